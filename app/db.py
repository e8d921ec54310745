"""Database engine and session factory (SQLAlchemy 2 async over asyncpg)."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app import embedded
from app.config import Settings
from app.metrics import DB_POOL_IN_USE

SessionFactory = async_sessionmaker[AsyncSession]


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


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    """An async engine with a pre-pinged pool whose checkouts are counted in metrics."""
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        hide_parameters=True,  # logged database errors never carry SQL parameters (emails, ids)
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={"server_settings": server_settings(settings), "timeout": settings.db_connect_timeout_seconds},
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: DB_POOL_IN_USE.dec())
    return engine


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
