"""Real servers for the hardening tests: uvicorn in a thread or a subprocess, redis-server, a private PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.config import Settings
from app.main import create_app
from tests.redis_support import redis_binary

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, what: str, attempts: int = 300, pause: float = 0.05) -> None:
    """Poll `check()` until it is truthy (bounded; fails the test with `what`)."""
    for _ in range(attempts):
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(pause)
    raise AssertionError(f"timed out waiting for {what}")


def _ready(url: str) -> bool:
    return httpx.get(f"{url}/health", timeout=1).status_code == 200


@contextlib.contextmanager
def thread_server(settings: Settings) -> Iterator[str]:
    """Serve create_app(settings) with uvicorn in a thread on 127.0.0.1; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), "the test server to start")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment of a `recengine serve` subprocess on the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECENGINE_")}
    env.update(
        {
            "RECENGINE_DATABASE_URL": database_url,
            "RECENGINE_LOG_LEVEL": "WARNING",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def serve_process(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`recengine serve` in a subprocess on a free port; yields (URL, process)."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "recengine"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is None and _ready(url), f"recengine serve ({log})", attempts=600)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class RedisServer:
    """A private redis-server on a free port that a test can kill and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="recengine-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        binary = redis_binary()
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, "redis-server to start")

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        """SIGKILL the server (an abrupt outage)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """Kill the server and remove its directory."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
