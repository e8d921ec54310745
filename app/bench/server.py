"""A real uvicorn server in a subprocess on 127.0.0.1, with its peak RSS sampled by psutil."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType

import httpx
import psutil


def free_port() -> int:
    """An unused local TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`recengine serve` against `database_url` with default settings but auth off and a larger in-process cache."""

    def __init__(self, database_url: str, *, env: dict[str, str] | None = None, profile: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.extra_env = env or {}
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def _command(self) -> list[str]:
        # `recengine serve` itself (python -m app serve): the uvicorn options users get (the serving
        # protocol with its one write per response, keep-alive), one worker without Redis
        serve = ["-m", "app", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.profile:  # py-spy records the server for the whole run into an SVG flame graph
            return ["py-spy", "record", "-o", self.profile, "-r", "200", "--", sys.executable, *serve]
        return [sys.executable, *serve]

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait for /ready."""
        env = {k: v for k, v in os.environ.items() if k != "RECENGINE_REDIS_URL"}
        env |= {
            "RECENGINE_DATABASE_URL": self.database_url,
            "RECENGINE_AUTH": "disabled",
            "RECENGINE_CACHE_MAX_ENTRIES": "200000",
            "RECENGINE_LOG_LEVEL": "WARNING",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        } | self.extra_env
        self.proc = subprocess.Popen(self._command(), env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("server did not become ready")
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _python_process(self) -> psutil.Process | None:
        if self.proc is None:
            return None
        proc = psutil.Process(self.proc.pid)
        if not self.profile:
            return proc
        kids = proc.children(recursive=True)
        return kids[0] if kids else None

    def _sample(self) -> None:
        target = self._python_process()
        while target is not None and not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, target.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    @property
    def peak_rss_mb(self) -> float:
        """Peak resident memory of the API process so far."""
        return round(self.peak_rss / 2**20, 1)

    def stop(self) -> None:
        """Terminate (SIGINT under py-spy so it writes its profile)."""
        self._stop.set()
        if self.proc is None:
            return
        if self.profile:
            child = self._python_process()
            if child is not None:
                child.terminate()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
