"""`recengine serve`: uvicorn with one worker per core, shared metrics and the embedded database's lifetime."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from app.config import Settings
from app.logging import logging_config

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
logger = logging.getLogger(__name__)


def worker_count(configured: int, *, shared_cache: bool) -> int:
    """The number of worker processes: `configured`, or, when 0, one per CPU core this process may use.

    Without a shared cache (Redis) auto means one worker: each worker's in-process result cache would keep
    serving a user's old results after another worker logged that user's event.
    """
    if configured > 0:
        return configured
    if not shared_cache:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity call on this platform
        return max(1, os.cpu_count() or 1)


def warn_unshared_cache(workers: int, settings: Settings) -> None:
    """Say so when several workers each cache results in process."""
    if workers > 1 and settings.redis_url is None:
        logger.warning(
            "%d workers with the in-process cache: a user's cached results may outlive their new events by up "
            "to RECENGINE_CACHE_TTL_SECONDS on the other workers; set RECENGINE_REDIS_URL to share one cache",
            workers,
        )


@contextmanager
def shared_metrics(workers: int) -> Iterator[str | None]:
    """With several workers, a fresh prometheus_client multiprocess directory for their lifetime.

    Workers inherit the environment variable, write their samples there, and `/metrics` sums them. A
    directory the operator set already is used as it is (and kept).
    """
    if workers < 2 or os.environ.get(MULTIPROC_ENV):
        yield os.environ.get(MULTIPROC_ENV)
        return
    path = tempfile.mkdtemp(prefix="recengine-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def prepare_database(settings: Settings) -> None:
    """Start and migrate the embedded database in the supervisor, before any worker exists.

    The supervisor then holds the data dir until it exits itself, after its workers: the server is stopped
    by the last process to leave, and the workers do not race to create or migrate the database.
    """
    if settings.database_url is not None:
        return
    from app import migrate
    from app.db import resolve_database_url

    migrate.upgrade(resolve_database_url(settings))


def exit_cleanly_on_sigterm() -> None:
    """After its graceful shutdown uvicorn re-raises the SIGTERM it caught; make that a normal exit.

    Killed by the default SIGTERM action, the process would skip its exit handlers, among them the one that
    stops the embedded PostgreSQL when its last user leaves.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


def serve(settings: Settings, *, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the API under uvicorn until SIGTERM/SIGINT."""
    import uvicorn

    from app.security.server import uvicorn_options

    count = worker_count(settings.workers if workers is None else workers, shared_cache=settings.redis_url is not None)
    warn_unshared_cache(count, settings)
    exit_cleanly_on_sigterm()
    with shared_metrics(count):
        prepare_database(settings)
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=count,
            log_config=logging_config(settings.log_level),  # applied again in each spawned worker
            access_log=False,
            **uvicorn_options(settings),
        )
