"""Item-to-item links per model version (the co_occurrence candidate source).

Revision ID: 2026_11_27_item_links
Revises: 2026_11_27_initial
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_27_item_links"
down_revision: str | None = "2026_11_27_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create `item_links`: each item's strongest neighbours under a model version."""
    op.execute(
        """
        CREATE TABLE item_links (
            model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            content_id text NOT NULL REFERENCES content (content_id) ON DELETE CASCADE,
            neighbor_id text NOT NULL REFERENCES content (content_id) ON DELETE CASCADE,
            weight real NOT NULL,
            PRIMARY KEY (model_version_id, content_id, neighbor_id)
        )
        """
    )


def downgrade() -> None:
    """Drop `item_links`."""
    op.execute("DROP TABLE IF EXISTS item_links")
