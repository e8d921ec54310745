"""`item_links`' primary key carries `weight` (INCLUDE), so the serving aggregate reads the index alone.

The links aggregate of a recommendation joins the user's seed items to their neighbours by this key and
multiplies each link's weight: with the weight only in the heap, every one of the ~10,000 seed-neighbour
pairs of a long MovieLens history was a heap fetch. With it in the key's leaf pages (and the table's
visibility map set, which training does by vacuuming the table after it writes a version's links) the join
is an index-only scan. The index is rebuilt once (about a second for MovieLens' 3M links).

Revision ID: 2026_11_28_link_weight_in_key
Revises: 2026_11_28_popularity_snapshot
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_28_link_weight_in_key"
down_revision: str | None = "2026_11_28_popularity_snapshot"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "(model_version_id, content_id, source, neighbor_id)"


def upgrade() -> None:
    """Rebuild the primary key with `weight` included."""
    op.execute(f"ALTER TABLE item_links DROP CONSTRAINT item_links_pkey, ADD PRIMARY KEY {KEY} INCLUDE (weight)")


def downgrade() -> None:
    """The key without `weight`."""
    op.execute(f"ALTER TABLE item_links DROP CONSTRAINT item_links_pkey, ADD PRIMARY KEY {KEY}")
