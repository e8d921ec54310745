"""The online loop: attributed events, monthly-partitioned impressions, experiments, conversion types.

One partition function serves every monthly-partitioned table (`create_month_partition`);
`create_event_partition` keeps its name and now calls it, and `create_event_partitions`
creates the coming months of `events` and `impressions` alike. `drop_month_partitions`
applies a retention to any of them.

Revision ID: 2026_11_27_online_loop
Revises: 2026_11_27_link_sources
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_27_online_loop"
down_revision: str | None = "2026_11_27_business_controls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONS = r"""
CREATE OR REPLACE FUNCTION create_month_partition(parent text, time_column text, month_start timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', month_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    upper_bound timestamptz := lower_bound + interval '1 month';
    part text := parent || '_y' || to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY') ||
                 'm' || to_char(lower_bound AT TIME ZONE 'UTC', 'MM');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    -- Rows that landed in DEFAULT for this month move into the new partition before it attaches.
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
    EXECUTE format(
        'WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
        parent || '_default', time_column, lower_bound, time_column, upper_bound, part);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   parent, part, lower_bound, upper_bound);
    RETURN part;
END $$;

CREATE OR REPLACE FUNCTION create_event_partition(month_start timestamptz) RETURNS text
LANGUAGE sql AS $$ SELECT create_month_partition('events', 'timestamp', month_start) $$;

CREATE OR REPLACE FUNCTION create_event_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    created integer := 0;
BEGIN
    FOR i IN 0..months_ahead LOOP
        IF create_event_partition(now() + make_interval(months => i)) IS NOT NULL THEN
            created := created + 1;
        END IF;
        IF create_month_partition('impressions', 'served_at', now() + make_interval(months => i)) IS NOT NULL THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

-- Drops the monthly partitions of `parent` that end before the current month minus `keep_months`,
-- and the DEFAULT partition's rows that old; returns how many partitions went.
CREATE OR REPLACE FUNCTION drop_month_partitions(parent text, time_column text, keep_months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                          - make_interval(months => keep_months);
    oldest text := parent || '_y' || to_char(cutoff AT TIME ZONE 'UTC', 'YYYY') ||
                   'm' || to_char(cutoff AT TIME ZONE 'UTC', 'MM');
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass AND c.relname ~ ('^' || parent || '_y[0-9]{4}m[0-9]{2}$')
          AND c.relname < oldest
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    EXECUTE format('DELETE FROM %I WHERE %I < %L', parent || '_default', time_column, cutoff);
    RETURN dropped;
END $$;
"""

TABLES = r"""
ALTER TABLE events ADD COLUMN recommendation_id text;
CREATE INDEX ix_events_recommendation ON events (recommendation_id) WHERE recommendation_id IS NOT NULL;

ALTER TABLE event_types ADD COLUMN conversion boolean NOT NULL DEFAULT false;
UPDATE event_types SET conversion = true WHERE name = 'purchase';

CREATE TABLE impressions (
    request_id text NOT NULL,
    parent_request_id text,
    user_id text,
    session_id text,
    strategy text NOT NULL,
    placement text,
    model_version integer,
    experiment text,
    arm text,
    item_ids text[] NOT NULL,
    cached boolean NOT NULL DEFAULT false,
    served_at timestamptz NOT NULL DEFAULT now(),
    CHECK (user_id IS NOT NULL OR session_id IS NOT NULL),
    PRIMARY KEY (request_id, served_at)
) PARTITION BY RANGE (served_at);
CREATE TABLE impressions_default PARTITION OF impressions DEFAULT;
CREATE INDEX ix_impressions_time ON impressions (served_at);
CREATE INDEX ix_impressions_experiment ON impressions (experiment, arm) WHERE experiment IS NOT NULL;

CREATE TABLE experiments (
    name text PRIMARY KEY CHECK (name ~ '^[a-zA-Z0-9_-]{1,100}$'),
    placement text,
    active boolean NOT NULL DEFAULT true,
    arms jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz
);
-- One running experiment per placement (NULL: requests without a placement), so assignment is unambiguous.
CREATE UNIQUE INDEX ux_experiments_active_placement ON experiments (coalesce(placement, '')) WHERE active;

SELECT create_event_partitions(3);
"""

RESTORE_EVENT_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION create_event_partition(month_start timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', month_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    upper_bound timestamptz := lower_bound + interval '1 month';
    part text := 'events_y' || to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY') ||
                 'm' || to_char(lower_bound AT TIME ZONE 'UTC', 'MM');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM events_default WHERE "timestamp" >= %L AND "timestamp" < %L RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', lower_bound, upper_bound, part);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lower_bound, upper_bound);
    RETURN part;
END $$;

CREATE OR REPLACE FUNCTION create_event_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    created integer := 0;
BEGIN
    FOR i IN 0..months_ahead LOOP
        IF create_event_partition(now() + make_interval(months => i)) IS NOT NULL THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;
"""

DROP = r"""
DROP TABLE IF EXISTS experiments;
DROP TABLE IF EXISTS impressions CASCADE;
ALTER TABLE event_types DROP COLUMN IF EXISTS conversion;
DROP INDEX IF EXISTS ix_events_recommendation;
ALTER TABLE events DROP COLUMN IF EXISTS recommendation_id;
DROP FUNCTION IF EXISTS drop_month_partitions(text, text, integer);
"""


def upgrade() -> None:
    """Add attribution, impressions, experiments and conversion types."""
    op.execute(PARTITIONS)
    op.execute(TABLES)


def downgrade() -> None:
    """Drop what this revision added and restore the events-only partition functions."""
    op.execute(DROP)
    op.execute(RESTORE_EVENT_PARTITIONS)
    op.execute("DROP FUNCTION IF EXISTS create_month_partition(text, text, timestamptz)")
