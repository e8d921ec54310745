"""The connection pool pings a connection only after it sat idle; a dead idle connection is replaced. Training's
VACUUM of the links (index-only reads) runs outside the request budget and never fails a training."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from tests.conftest import _database_url, make_settings


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of the service's own making, one pooled connection."""
    made = db.create_engine(database_url, make_settings(database_url, db_pool_size=1, db_max_overflow=0))
    yield made
    await made.dispose()


@pytest.fixture
def pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the dialect's pings (each still goes to the server)."""
    dialect = engine.sync_engine.dialect
    calls: list[int] = []
    real = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        calls.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return calls


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_in_recent_use_is_not_pinged(engine: AsyncEngine, pings: list[int]) -> None:
    first = await backend_pid(engine)
    assert [await backend_pid(engine) for _ in range(5)] == [first] * 5
    assert pings == []


async def test_an_idle_connection_is_pinged_once_per_checkout(
    engine: AsyncEngine, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)
    first = await backend_pid(engine)
    assert pings == []  # a new connection is not pinged
    assert await backend_pid(engine) == first
    assert await backend_pid(engine) == first
    assert len(pings) == 2


async def test_a_dead_idle_connection_is_replaced_at_checkout(
    engine: AsyncEngine, database_url: str, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)
    dead = await backend_pid(engine)
    other = db.create_engine(database_url, make_settings(database_url))
    try:
        async with other.connect() as conn:
            assert (await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": dead})).scalar_one()
    finally:
        await other.dispose()
    replaced = await backend_pid(engine)  # no error reaches the caller
    assert replaced != dead
    assert len(pings) == 1


async def test_a_dead_connection_in_recent_use_fails_once_then_the_pool_recovers(
    engine: AsyncEngine, database_url: str
) -> None:
    dead = await backend_pid(engine)
    other = db.create_engine(database_url, make_settings(database_url))
    try:
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": dead})
    finally:
        await other.dispose()
    with pytest.raises(DBAPIError):  # the statement fails (its wording depends on when asyncpg notices)
        await backend_pid(engine)
    assert await backend_pid(engine) != dead


async def test_vacuuming_the_links_sets_their_visibility(engine: AsyncEngine) -> None:
    from app.repositories.links import vacuum_links

    await vacuum_links(engine)
    async with engine.connect() as conn:
        vacuumed = (
            await conn.execute(
                text("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'item_links'")
            )
        ).scalar_one()
        timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
    assert vacuumed
    assert timeout != "0"  # the pooled connection is back to the request budget


async def test_a_failed_vacuum_is_logged_and_training_goes_on(pg_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    from app.repositories.links import vacuum_links

    url = _database_url(pg_uri, "postgres")  # no item_links table there
    broken = db.create_engine(url, make_settings(url))
    try:
        with caplog.at_level(logging.WARNING, logger="app.repositories.links"):
            await vacuum_links(broken)  # no exception
    finally:
        await broken.dispose()
    assert "VACUUM item_links failed" in caplog.text and "item_links" in caplog.text
