"""One neighbour table for every item-to-item source: `item_links.source`.

Revision ID: 2026_11_27_link_sources
Revises: 2026_11_27_item_links
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_27_link_sources"
down_revision: str | None = "2026_11_27_item_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `source` (existing rows are co-occurrence links) and key the table by it."""
    op.execute("ALTER TABLE item_links ADD COLUMN source text NOT NULL DEFAULT 'co_occurrence'")
    op.execute("ALTER TABLE item_links ALTER COLUMN source DROP DEFAULT")
    op.execute("ALTER TABLE item_links DROP CONSTRAINT item_links_pkey")
    # serving reads every source's links of the user's items at once: (version, item) leads the key
    op.execute("ALTER TABLE item_links ADD PRIMARY KEY (model_version_id, content_id, source, neighbor_id)")
    op.execute("CREATE INDEX ix_item_links_neighbor ON item_links (model_version_id, neighbor_id)")


def downgrade() -> None:
    """Keep only the co-occurrence links and drop `source`."""
    op.execute("DROP INDEX IF EXISTS ix_item_links_neighbor")
    op.execute("DELETE FROM item_links WHERE source <> 'co_occurrence'")
    op.execute("ALTER TABLE item_links DROP CONSTRAINT item_links_pkey")
    op.execute("ALTER TABLE item_links DROP COLUMN source")
    op.execute("ALTER TABLE item_links ADD PRIMARY KEY (model_version_id, content_id, neighbor_id)")
