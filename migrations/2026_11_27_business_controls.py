"""Business controls: availability windows on content, indexes for content filters, placements.

Revision ID: 2026_11_27_business_controls
Revises: 2026_11_27_link_sources
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_27_business_controls"
down_revision: str | None = "2026_11_27_link_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
ALTER TABLE content ADD COLUMN available_from timestamptz, ADD COLUMN expires_at timestamptz;
ALTER TABLE content ADD CONSTRAINT ck_content_window
    CHECK (available_from IS NULL OR expires_at IS NULL OR available_from < expires_at);
-- Partial indexes: most items have an open window, so only bounded ones are indexed.
CREATE INDEX ix_content_available_from ON content (available_from) WHERE available_from IS NOT NULL;
CREATE INDEX ix_content_expires_at ON content (expires_at) WHERE expires_at IS NOT NULL;
-- metadata containment (@>) for ContentFilterInput.metadata; tags and category are indexed already.
CREATE INDEX ix_content_metadata ON content USING gin (metadata jsonb_path_ops);
CREATE INDEX IF NOT EXISTS ix_content_tags ON content USING gin (tags);
CREATE INDEX IF NOT EXISTS ix_content_category ON content (category);

-- Versions come from a sequence so a deleted and re-created placement never reuses a cached version.
CREATE SEQUENCE placement_versions;
CREATE TABLE placements (
    name text PRIMARY KEY CHECK (name ~ '^[a-zA-Z0-9_.:-]{1,100}$'),
    description text,
    strategy text,
    count integer CHECK (count IS NULL OR count > 0),
    filter jsonb,
    boosts jsonb NOT NULL DEFAULT '[]'::jsonb,
    diversity real CHECK (diversity IS NULL OR (diversity >= 0 AND diversity <= 1)),
    version bigint NOT NULL DEFAULT nextval('placement_versions'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = r"""
DROP TABLE IF EXISTS placements;
DROP SEQUENCE IF EXISTS placement_versions;
DROP INDEX IF EXISTS ix_content_metadata;
DROP INDEX IF EXISTS ix_content_expires_at;
DROP INDEX IF EXISTS ix_content_available_from;
ALTER TABLE content DROP CONSTRAINT IF EXISTS ck_content_window;
ALTER TABLE content DROP COLUMN IF EXISTS expires_at, DROP COLUMN IF EXISTS available_from;
"""


def upgrade() -> None:
    """Add the availability window, the filter indexes and the `placements` table."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Remove them again (ix_content_tags and ix_content_category belong to the initial schema)."""
    op.execute(DOWNGRADE)
