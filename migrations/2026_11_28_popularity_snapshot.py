"""Popularity snapshot: distinct engaged users per item as of a database snapshot, and each event's writer.

The all-time popular list counted distinct engaged users over the whole event log on every refresh: 40 s
for 10M events (over the 30 s statement timeout). Training now stores those counts together with the
PostgreSQL snapshot they were counted under (`pg_current_snapshot()`); serving adds the events that
snapshot could not see, found by the transaction that wrote them (`events.ingest_xid`, indexed), so the
list stays exact and fresh while the aggregate reads only the new events (`app.repositories.popularity`).

Visibility, not a clock, decides what is new: an event written in a transaction that committed after the
snapshot is counted once, whatever its `timestamp` (late, back-dated events included). Rows written
before this migration read as transaction 1, and the initial state is the empty snapshot `1:1:` (nothing
visible), so until the first refresh every event counts as new: the old full aggregate.

Revision ID: 2026_11_28_popularity_snapshot
Revises: 2026_11_27_events_user_content
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_28_popularity_snapshot"
down_revision: str | None = "2026_11_27_events_user_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
-- a constant default first (no table rewrite: existing rows read as 1), then the writer's id for new rows
ALTER TABLE events ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT '1';
ALTER TABLE events ALTER COLUMN ingest_xid SET DEFAULT pg_current_xact_id();
CREATE INDEX ix_events_ingest_xid ON events (ingest_xid);
CREATE TABLE popularity_snapshot (
    content_id text PRIMARY KEY,
    users integer NOT NULL
);
CREATE INDEX ix_popularity_snapshot_users ON popularity_snapshot (users DESC, content_id);
-- One row: the events visible to `snap` are counted in popularity_snapshot.
CREATE TABLE popularity_snapshot_state (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    snap pg_snapshot NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO popularity_snapshot_state (snap) VALUES ('1:1:');
"""

DOWNGRADE = r"""
DROP TABLE IF EXISTS popularity_snapshot_state;
DROP TABLE IF EXISTS popularity_snapshot;
DROP INDEX IF EXISTS ix_events_ingest_xid;
ALTER TABLE events DROP COLUMN IF EXISTS ingest_xid;
"""


def upgrade() -> None:
    """Add the column, its index and the snapshot tables."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop them."""
    op.execute(DOWNGRADE)
