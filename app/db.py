"""Database engine and session factory (SQLAlchemy 2 async over asyncpg)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app import embedded
from app.config import Settings
from app.metrics import DB_POOL_IN_USE

SessionFactory = async_sessionmaker[AsyncSession]
# A pooled connection checked in less than this long ago is taken as alive; one idle for longer is pinged
# when checked out (SQLAlchemy's `pool_pre_ping` pinged at every checkout: on asyncpg a ping is BEGIN, a
# query and ROLLBACK, three round trips, 6% of the API's CPU in a soak). As HikariCP's alive-bypass window.
PING_IDLE_SECONDS = 5.0
_CHECKED_IN_AT = "recengine_checked_in_at"


def resolve_database_url(settings: Settings) -> str:
    """The configured database URL, or the embedded server's (started on demand)."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    uri = embedded.ensure_server(settings.data_dir)
    embedded.ensure_database(uri)
    return embedded.async_url(uri)


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the asyncpg driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def sync_url(url: str) -> str:
    """The psycopg2 form of an async URL (Alembic runs synchronously)."""
    return url.replace("+asyncpg", "+psycopg2", 1)


def server_settings(settings: Settings) -> dict[str, str]:
    """Per-connection PostgreSQL settings, including the statement timeout of the request budget."""
    values = {
        "timezone": "UTC",
        "application_name": "recengine",
        "hnsw.ef_search": str(settings.hnsw_ef_search),
        "hnsw.iterative_scan": "relaxed_order",  # filters inside a vector query do not starve the result
    }
    if settings.db_statement_timeout_seconds > 0:
        values["statement_timeout"] = str(int(settings.db_statement_timeout_seconds * 1000))
    return values


def create_engine(url: str, settings: Settings, *, ping_every_checkout: bool = False) -> AsyncEngine:
    """An async engine whose pool checkouts are counted in metrics. Its connections are pinged when idle for
    `PING_IDLE_SECONDS`, or at every checkout with `ping_every_checkout` (read replicas: the read router falls
    back to the primary when a replica fails at checkout, before any query of the caller)."""
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=ping_every_checkout,
        hide_parameters=True,  # logged database errors never carry SQL parameters (emails, ids)
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={"server_settings": server_settings(settings), "timeout": settings.db_connect_timeout_seconds},
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: DB_POOL_IN_USE.dec())
    if not ping_every_checkout:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a connection at checkout when it has been idle for `PING_IDLE_SECONDS`; a failed ping discards
    every connection pooled before it, and the checkout goes on with a new one (as a failed pre-ping does).
    A connection that breaks while in recent use fails its statement, which invalidates the pool too."""
    dialect = engine.sync_engine.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_CHECKED_IN_AT)  # absent on a new connection: just connected, alive
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError(f"ping after {time.monotonic() - idle_since:.0f} s idle failed: {exc}") from exc

    event.listen(engine.sync_engine.pool, "checkin", checked_in)
    event.listen(engine.sync_engine.pool, "checkout", checked_out)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
