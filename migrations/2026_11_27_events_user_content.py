"""An index on events (user_id, content_id): the "not consumed by this user" anti-join of long histories.

Candidate queries for a user whose history is longer than one read exclude everything the user has an
event with by `NOT EXISTS (events of this user and this item)`. Without this index each probe walked
the item's events (all users) and filtered by user: 250 ms for the heaviest bench user at 100k items,
15 ms with it (`docs/SCALING.md`).

Revision ID: 2026_11_27_events_user_content
Revises: 2026_11_27_online_loop
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_27_events_user_content"
down_revision: str | None = "2026_11_27_online_loop"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the index on the partitioned table (PostgreSQL builds it on every partition)."""
    op.execute("CREATE INDEX IF NOT EXISTS ix_events_user_content ON events (user_id, content_id)")


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP INDEX IF EXISTS ix_events_user_content")
