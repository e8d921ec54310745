"""Fast ingest through COPY: staging tables, then idempotent inserts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories.users import SHARES_DATA

EVENT_COLUMNS = (
    "event_id",
    "user_id",
    "content_id",
    "event_type",
    "value",
    "timestamp",
    "session_id",
    "device_type",
    "platform",
    "metadata",
)
LOGGED_COLUMNS = (*EVENT_COLUMNS, "recommendation_id")  # events logged through the API may be attributed


async def _raw(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction."""
    await session.execute(text("SELECT 1"))  # SQLAlchemy begins its transaction lazily
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def copy_events(
    session: AsyncSession, records: Sequence[tuple[Any, ...]], columns: Sequence[str] = EVENT_COLUMNS
) -> set[uuid.UUID]:
    """COPY events (`columns` order, metadata as JSON text) into a staging table, then store the
    ones whose ids are new, in the session's transaction; returns the stored ids."""
    driver = await _raw(session)
    await driver.execute(
        "CREATE TEMP TABLE IF NOT EXISTS staging_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await driver.copy_records_to_table("staging_events", records=records, columns=list(columns))
    cols = ", ".join(f'"{c}"' for c in columns)
    rows = await driver.fetch(
        f"""
        WITH fresh AS (
            INSERT INTO event_keys (event_id, user_id, "timestamp")
            SELECT DISTINCT ON (event_id) event_id, user_id, "timestamp" FROM staging_events
            ORDER BY event_id  -- one lock order for every batch: overlapping batches cannot deadlock
            ON CONFLICT DO NOTHING RETURNING event_id
        )
        INSERT INTO events ({cols})
        SELECT DISTINCT ON (s.event_id) {", ".join(f's."{c}"' for c in columns)}
        FROM staging_events s JOIN fresh USING (event_id)
        RETURNING event_id
        """
    )
    return {r[0] for r in rows}


async def ensure_users(session: AsyncSession, user_ids: Sequence[str]) -> int:
    """Create minimal profiles for unknown ids in one statement."""
    driver = await _raw(session)
    status = await driver.execute(
        "INSERT INTO users (user_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", list(user_ids)
    )
    return int(status.split()[-1])


async def touch_users_from_events(session: AsyncSession, user_ids: Sequence[str]) -> None:
    """Set last_active to each user's newest event."""
    driver = await _raw(session)
    await driver.execute(
        """UPDATE users u SET last_active = e.latest
           FROM (SELECT user_id, max("timestamp") AS latest FROM events
                 WHERE user_id = ANY($1::text[]) GROUP BY user_id) e
           WHERE u.user_id = e.user_id AND (u.last_active IS NULL OR u.last_active < e.latest)""",
        list(user_ids),
    )


async def copy_factors(
    session: AsyncSession, table: str, key: str, version_id: int, ids: Sequence[str], vectors: Any
) -> None:
    """COPY (version, id, vector) rows into `user_factors` or `item_factors`."""
    from pgvector.asyncpg import register_vector

    driver = await _raw(session)
    await register_vector(driver)  # binary COPY needs the codec; SQLAlchemy's own binds expect text
    try:
        records = [(version_id, i, v) for i, v in zip(ids, vectors, strict=True)]
        await driver.copy_records_to_table(table, records=records, columns=["model_version_id", key, "factors"])
    finally:
        await driver.reset_type_codec("vector", schema="public")


async def fetch_training_events(session: AsyncSession) -> list[Any]:
    """(user, item, type, value, epoch) of every event whose user shares data, oldest first."""
    driver = await _raw(session)
    return list(
        await driver.fetch(
            f"""SELECT e.user_id, e.content_id, e.event_type, e.value, extract(epoch FROM e."timestamp")::float8
               FROM events e JOIN users u USING (user_id)
               WHERE {SHARES_DATA}
               ORDER BY e."timestamp" """
        )
    )


async def copy_links(session: AsyncSession, version_id: int, rows: Sequence[tuple[str, str, str, float]]) -> None:
    """COPY (source, content, neighbour, weight) links of a model version into `item_links`."""
    driver = await _raw(session)
    records = ((version_id, s, a, b, w) for s, a, b, w in rows)  # streamed: no second list of every row
    await driver.copy_records_to_table(
        "item_links", records=records, columns=["model_version_id", "source", "content_id", "neighbor_id", "weight"]
    )


IMPRESSION_COLUMNS = (
    "request_id",
    "parent_request_id",
    "user_id",
    "session_id",
    "strategy",
    "placement",
    "model_version",
    "experiment",
    "arm",
    "item_ids",
    "cached",
    "served_at",
)


async def copy_impressions(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
    """COPY served lists (IMPRESSION_COLUMNS order) into `impressions`, in the session's transaction."""
    driver = await _raw(session)
    await driver.copy_records_to_table("impressions", records=records, columns=list(IMPRESSION_COLUMNS))
