"""`recengine serve` on the embedded database: worker processes, shared metrics, and the database's lifetime."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.mmap_dict import MmapedDict

from app.embedded import HANDLES_FILE, prune_dead_handles
from app.serving import worker_count
from tests.hardening.servers import ROOT, free_port, wait_until

READY_LINE = "recengine ready in"


def serve_env(data_dir: Path) -> dict[str, str]:
    """A `recengine serve` environment on its own embedded data dir (no database URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECENGINE_", "PROMETHEUS_"))}
    env.update(
        {
            "RECENGINE_DATA_DIR": str(data_dir),
            "RECENGINE_AUTH": "disabled",
            "RECENGINE_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
    )
    return env


@contextlib.contextmanager
def serve(data_dir: Path, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`python -m app serve --workers N` until every worker is ready; yields (URL, process, log). Killed at the end
    if the test left it running."""
    port = free_port()
    log = data_dir / f"serve-{port}.log"
    command = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)], env=serve_env(data_dir), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: process.poll() is None and log.read_text().count(READY_LINE) >= workers,
            f"{workers} worker(s) of recengine serve ({log})",
            attempts=2400,
            pause=0.1,
        )
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def postmaster(data_dir: Path) -> psutil.Process:
    """The embedded server's postmaster process (first line of postmaster.pid)."""
    pid = int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
    return psutil.Process(pid)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a process manager does, and wait for a clean exit."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0


def requests_per_pid(metrics_dir: Path) -> dict[str, float]:
    """GraphQL requests each worker counted in its own multiprocess file."""
    counted: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        total = sum(v for key, v, *_ in values if json.loads(key)[0] == "recengine_graphql_requests")
        counted[path.stem.split("_")[-1]] = total
    return counted


def exported_requests(url: str) -> float:
    """The sum of recengine_graphql_requests_total over every label set, as /metrics shows it."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r"^recengine_graphql_requests_total\{[^}]*\} (\S+)$", text, re.M))


@pytest.fixture
def data_dir() -> Path:
    """A fresh data dir (a new embedded PostgreSQL) for one test."""
    path = Path(tempfile.mkdtemp(prefix="recengine-serve-"))
    path.chmod(0o755)
    return path


def test_worker_count_zero_means_one_per_core_with_a_shared_cache() -> None:
    assert worker_count(3, shared_cache=False) == worker_count(3, shared_cache=True) == 3
    assert worker_count(0, shared_cache=True) == len(os.sched_getaffinity(0)) >= 1
    assert worker_count(0, shared_cache=False) == 1  # in-process caches would miss each other's invalidations


def test_two_workers_sum_their_metrics_and_stop_postgres_on_sigterm(data_dir: Path) -> None:
    with serve(data_dir, workers=2) as (url, process, _):
        server = postmaster(data_dir)
        workers = process_children(process.pid)
        assert len(workers) == 2
        metrics_dir = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        sent = 0
        while len([n for n in requests_per_pid(metrics_dir).values() if n > 0]) < 2 and sent < 2000:
            with httpx.Client(base_url=url) as fresh:  # a new connection, so either worker may accept it
                assert fresh.post("/graphql", json={"query": "{ __typename }"}).status_code == 200
            sent += 1
        per_worker = requests_per_pid(metrics_dir)
        assert len([n for n in per_worker.values() if n > 0]) == 2, per_worker
        assert exported_requests(url) == sent == sum(per_worker.values())
        stop(process)
    wait_until(lambda: not server.is_running(), "the embedded PostgreSQL to stop", attempts=200, pause=0.1)
    assert not metrics_dir.exists()
    assert json.loads((data_dir / "pg" / HANDLES_FILE).read_text()) == []


def test_sigterm_after_a_crashed_run_stops_postgres(data_dir: Path) -> None:
    with serve(data_dir, workers=1) as (_, crashed, _):
        server = postmaster(data_dir)
        crashed.kill()  # no exit handlers run: the pid stays in the data dir's list of users
        crashed.wait()
    stale = json.loads((data_dir / "pg" / HANDLES_FILE).read_text())
    assert crashed.pid in stale and server.is_running()
    with serve(data_dir, workers=1) as (_, process, _):
        assert postmaster(data_dir).pid == server.pid  # the orphaned server is reused
        stop(process)
    wait_until(lambda: not server.is_running(), "the embedded PostgreSQL to stop", attempts=200, pause=0.1)


def test_prune_keeps_live_processes_and_drops_exited_ones(data_dir: Path) -> None:
    pgdata = data_dir / "pg"
    pgdata.mkdir()
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    (pgdata / HANDLES_FILE).write_text(json.dumps([os.getpid(), exited.pid]))
    assert prune_dead_handles(pgdata) == [exited.pid]
    assert json.loads((pgdata / HANDLES_FILE).read_text()) == [os.getpid()]
    assert prune_dead_handles(pgdata) == []


def process_children(pid: int) -> list[psutil.Process]:
    """The uvicorn workers of a serve process (its Python children, not multiprocessing's helpers)."""
    children = psutil.Process(pid).children()
    return [c for c in children if "spawn_main" in " ".join(c.cmdline())]
