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


# Each logged column's SQL type: the API path passes one array per column.
LOGGED_TYPES = {
    "event_id": "uuid",
    "user_id": "text",
    "content_id": "text",
    "event_type": "text",
    "value": "float8",
    "timestamp": "timestamptz",
    "session_id": "text",
    "device_type": "text",
    "platform": "text",
    "metadata": "jsonb",
    "recommendation_id": "text",
}


def store_events_sql(source: str, columns: Sequence[str], *, profiles: bool, inputs: str = "") -> str:
    """One statement storing the events of `source` (a FROM item aliased `s`, with `columns`; `inputs` is a
    CTE it may name) whose ids are new; it returns their ids. Keys go in event-id order, so overlapping
    batches lock them in the same order.

    With `profiles` it also creates a minimal profile for each unknown user of a stored event and moves each
    such user's last_active forward to their newest stored event. Foreign keys are checked at the end of the
    statement, so a profile created here satisfies the keys and events that reference it."""
    cols = ", ".join(f'"{c}"' for c in columns)
    picked = ", ".join(f's."{c}"' for c in columns)
    sql = f"""{inputs + ", " if inputs else ""}
        fresh AS (
            INSERT INTO event_keys (event_id, user_id, "timestamp")
            SELECT DISTINCT ON (s.event_id) s.event_id, s.user_id, s."timestamp" FROM {source}
            ORDER BY s.event_id
            ON CONFLICT DO NOTHING RETURNING event_id
        ), stored AS (
            INSERT INTO events ({cols})
            SELECT DISTINCT ON (s.event_id) {picked} FROM {source} JOIN fresh USING (event_id)
            RETURNING event_id, user_id, "timestamp"
        )"""
    if profiles:
        sql += """, profiles AS (
            INSERT INTO users (user_id, last_active)
            SELECT user_id, max("timestamp") FROM stored GROUP BY user_id ORDER BY user_id
            ON CONFLICT (user_id) DO UPDATE SET last_active = excluded.last_active
            WHERE users.last_active IS NULL OR users.last_active < excluded.last_active
        )"""
    return f"WITH {sql} SELECT event_id FROM stored"


def _unnest_source(columns: Sequence[str]) -> str:
    """`input`: one row per element of the per-column array parameters (`:<column>`; metadata as JSON text)."""
    arrays = ", ".join(f"CAST(:{c} AS {'text' if LOGGED_TYPES[c] == 'jsonb' else LOGGED_TYPES[c]}[])" for c in columns)
    picked = ", ".join(f'CAST(u."{c}" AS jsonb)' if LOGGED_TYPES[c] == "jsonb" else f'u."{c}"' for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    return f"input ({names}) AS (SELECT {picked} FROM unnest({arrays}) AS u({names}))"


# The API's small batches: every write of an event (profile, key, row, last_active) in one round trip.
STORE_LOGGED = text(store_events_sql("input s", LOGGED_COLUMNS, profiles=True, inputs=_unnest_source(LOGGED_COLUMNS)))


async def store_logged(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> set[uuid.UUID]:
    """Store events (LOGGED_COLUMNS order, metadata as JSON text) whose ids are new, with their users'
    profiles and last_active, in one statement of the session's transaction; returns the stored ids."""
    arrays = {c: [r[i] for r in records] for i, c in enumerate(LOGGED_COLUMNS)}
    return set((await session.scalars(STORE_LOGGED, arrays)).all())


async def copy_events(
    session: AsyncSession,
    records: Sequence[tuple[Any, ...]],
    columns: Sequence[str] = EVENT_COLUMNS,
    *,
    profiles: bool = False,
) -> set[uuid.UUID]:
    """COPY events (`columns` order, metadata as JSON text) into a staging table, then store the
    ones whose ids are new (with their users' profiles, see `store_events_sql`), in the session's
    transaction; returns the stored ids."""
    driver = await _raw(session)
    await driver.execute(
        "CREATE TEMP TABLE IF NOT EXISTS staging_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await driver.copy_records_to_table("staging_events", records=records, columns=list(columns))
    rows = await driver.fetch(store_events_sql("staging_events s", columns, profiles=profiles))
    return {r[0] for r in rows}


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
