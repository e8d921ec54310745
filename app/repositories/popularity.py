"""Popularity: distinct engaged users per item, as a stored snapshot plus what the snapshot could not see.

A user engages with an item when they have an event of a positive-weight type with it and share data.
`refresh` counts that over the whole event log (training runs it) and stores the counts with the
PostgreSQL snapshot they were counted under. `POPULAR_SQL` (the all-time list) adds the events whose
writing transaction that snapshot could not see (`events.ingest_xid`, an index range from the snapshot's
xmin), skipping pairs the snapshot already counted, so it is exact and current while reading only new
events. The trending list (a time window) aggregates its window directly.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.repositories.users import SHARES_DATA

# Events that count as engagement: a positive-weight type, by a user who shares data (alias e).
ENGAGED = f"""events e
JOIN event_types t ON t.name = e.event_type AND t.weight > 0
JOIN users u ON u.user_id = e.user_id AND {SHARES_DATA}"""

# A transaction-level advisory lock: a refresh holds it exclusively, a privacy change or an erasure that
# adjusts the counts holds it shared, so an adjustment never interleaves with a recount.
LOCK = 0x706F70  # "pop"

REFRESH = f"""
WITH counted AS (
    INSERT INTO popularity_snapshot (content_id, users)
    SELECT e.content_id, count(DISTINCT e.user_id) FROM {ENGAGED} GROUP BY e.content_id
    RETURNING 1  -- a data-modifying WITH runs once, to completion, under the statement's snapshot
)
UPDATE popularity_snapshot_state SET snap = pg_current_snapshot(), refreshed_at = now()"""

# All-time popular items for a content filter {filter} (alias c): the snapshot's top :k that pass the
# filter, merged with every item that has engagement the snapshot did not see (snapshot + new users).
POPULAR_SQL = f"""
WITH st AS MATERIALIZED (SELECT snap, pg_snapshot_xmin(snap) AS xmin FROM popularity_snapshot_state),
fresh AS MATERIALIZED (
    SELECT e.content_id, count(DISTINCT e.user_id) AS users
    FROM {ENGAGED}
    WHERE e.ingest_xid >= (SELECT xmin FROM st)
      AND NOT pg_visible_in_snapshot(e.ingest_xid, (SELECT snap FROM st))
      AND NOT EXISTS (
          SELECT 1 FROM events p JOIN event_types pt ON pt.name = p.event_type AND pt.weight > 0
          WHERE p.user_id = e.user_id AND p.content_id = e.content_id
            AND pg_visible_in_snapshot(p.ingest_xid, (SELECT snap FROM st)))
    GROUP BY e.content_id
),
ids AS (
    (SELECT s.content_id FROM popularity_snapshot s JOIN content c ON c.content_id = s.content_id
     WHERE {{filter}} ORDER BY s.users DESC, s.content_id LIMIT :k)
    UNION
    SELECT content_id FROM fresh
)
SELECT c.content_id, (coalesce(s.users, 0) + coalesce(f.users, 0))::float8 AS score
FROM ids JOIN content c ON c.content_id = ids.content_id
LEFT JOIN popularity_snapshot s ON s.content_id = ids.content_id
LEFT JOIN fresh f ON f.content_id = ids.content_id
WHERE {{filter}}
ORDER BY score DESC, c.content_id
LIMIT :k"""

# Items by distinct engaged users since :since, for a content filter {filter} (alias c).
WINDOW_SQL = f"""
SELECT e.content_id, count(DISTINCT e.user_id)::float8 AS score
FROM {ENGAGED}
JOIN content c ON c.content_id = e.content_id
WHERE {{filter}} AND e."timestamp" >= CAST(:since AS timestamptz)
GROUP BY e.content_id
ORDER BY score DESC, e.content_id
LIMIT :k"""


# One user's engaged items that the snapshot counted (their positive events it could see) change by :delta.
ADJUST = """
WITH items AS (
    SELECT DISTINCT p.content_id
    FROM events p JOIN event_types pt ON pt.name = p.event_type AND pt.weight > 0
    WHERE p.user_id = :user
      AND pg_visible_in_snapshot(p.ingest_xid, (SELECT snap FROM popularity_snapshot_state))
)
INSERT INTO popularity_snapshot (content_id, users)
SELECT content_id, :delta FROM items
ON CONFLICT (content_id) DO UPDATE SET users = popularity_snapshot.users + EXCLUDED.users"""


async def refresh(session: AsyncSession, *, commit: bool = True) -> None:
    """Recount the snapshot over every event visible now and store that snapshot (no statement timeout:
    10M events take ~40 s). Readers keep the previous counts until the commit; a concurrent refresh, privacy
    change or erasure waits for this one."""
    await session.execute(text("SET LOCAL statement_timeout = 0"))
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
    await session.execute(text("DELETE FROM popularity_snapshot"))
    await session.execute(text(REFRESH))
    if commit:
        await session.commit()


async def count_user(session: AsyncSession, user_id: str, *, sharing: bool) -> None:
    """Add (`sharing`) or take away one user's engagement in the snapshot's counts, in the caller's
    transaction: called when their data sharing changes or they are erased (before their events go).
    The events the snapshot did not see are counted live, so they need nothing."""
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": LOCK})
    await session.execute(text(ADJUST), {"user": user_id, "delta": 1 if sharing else -1})
    await session.execute(text("DELETE FROM popularity_snapshot WHERE users <= 0"))


async def never_refreshed(session: AsyncSession) -> bool:
    """Whether the snapshot is still the initial empty one (every event counts as new)."""
    xmin = await session.scalar(text("SELECT pg_snapshot_xmin(snap) FROM popularity_snapshot_state"))
    return xmin is None or int(xmin) <= 1
