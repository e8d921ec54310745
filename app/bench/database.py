"""Bench databases: one per catalog size on the configured (or embedded) server, migrated to head."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import make_url

from app import migrate
from app.bench.load import dsn
from app.config import Settings
from app.db import normalize_url, resolve_database_url


def server_url(settings: Settings, database_url: str | None) -> str:
    """The async URL of the given database, else the configured one (starting the embedded server)."""
    if database_url:
        return normalize_url(database_url)
    return resolve_database_url(settings)


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _create(url: str) -> None:
    name = make_url(url).database
    admin = await asyncpg.connect(dsn(with_database(url, "postgres")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def ensure(url: str) -> str:
    """Create the database if missing and migrate it to head; returns `url`."""
    asyncio.run(_create(url))
    migrate.upgrade(url)
    return url


def bench_url(base: str, size: int) -> str:
    """The per-size bench database on `base`'s server."""
    return with_database(base, f"recengine_bench_{size}")
