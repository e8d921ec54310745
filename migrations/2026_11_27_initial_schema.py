"""Initial schema: users, content, partitioned events, event types, factors, model registry, API keys.

Revision ID: 2026_11_27_initial
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_11_27_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Activity bookkeeping (last_active) is not an edit of the record.
    IF to_jsonb(NEW) - 'last_active' - 'updated_at' IS DISTINCT FROM to_jsonb(OLD) - 'last_active' - 'updated_at' THEN
        NEW.updated_at = now();
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION recengine_tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(array_to_string(tags, ' '), '') $$;
"""

USERS = r"""
CREATE TABLE users (
    user_id text PRIMARY KEY CHECK (char_length(user_id) BETWEEN 1 AND 255),
    email text UNIQUE,
    demographics jsonb NOT NULL DEFAULT '{}'::jsonb,
    preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    segments text[] NOT NULL DEFAULT '{}',
    privacy_settings jsonb NOT NULL DEFAULT '{"data_sharing": true, "personalization": true}'::jsonb,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'suspended')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_active timestamptz
);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX ix_users_status ON users (status);
CREATE INDEX ix_users_segments ON users USING gin (segments);
CREATE INDEX ix_users_last_active ON users (last_active);
"""

CONTENT = r"""
CREATE TABLE content (
    content_id text PRIMARY KEY CHECK (content_id ~ '^[a-zA-Z0-9_-]{1,255}$'),
    title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description text,
    content_type text NOT NULL
        CHECK (content_type IN ('product', 'video', 'article', 'post', 'image', 'audio')),
    status text NOT NULL DEFAULT 'published'
        CHECK (status IN ('draft', 'published', 'archived', 'deleted')),
    category text,
    tags text[] NOT NULL DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(description, '')), 'B') ||
        setweight(to_tsvector('english', recengine_tags_text(tags)), 'C')
    ) STORED,
    embedding vector(384),
    embedding_model text,
    embedding_hash text
);
CREATE TRIGGER content_set_updated_at BEFORE UPDATE ON content
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX ix_content_search ON content USING gin (search_vector);
CREATE INDEX ix_content_embedding ON content USING hnsw (embedding vector_cosine_ops)
    WITH (m = 16, ef_construction = 64);
CREATE INDEX ix_content_type_status ON content (content_type, status);
CREATE INDEX ix_content_category ON content (category);
CREATE INDEX ix_content_tags ON content USING gin (tags);
CREATE INDEX ix_content_created_at ON content (created_at DESC);
CREATE INDEX ix_content_published_at ON content (published_at DESC);
"""

EVENTS = r"""
CREATE TABLE events (
    event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    content_id text NOT NULL REFERENCES content (content_id),
    event_type text NOT NULL,
    value double precision,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    session_id text,
    device_type text,
    platform text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    processed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (event_id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX ix_events_user_time ON events (user_id, "timestamp" DESC);
CREATE INDEX ix_events_content_time ON events (content_id, "timestamp" DESC);
CREATE INDEX ix_events_type ON events (event_type);
CREATE INDEX ix_events_time ON events ("timestamp");
CREATE INDEX ix_events_session ON events (session_id);

CREATE TABLE event_keys (
    event_id uuid PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    "timestamp" timestamptz NOT NULL
);
CREATE INDEX ix_event_keys_user ON event_keys (user_id);

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
    -- Rows that landed in DEFAULT for this month move into the new partition before it attaches.
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

SELECT create_event_partitions(3);
"""

REFERENCE = r"""
CREATE TABLE event_types (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    weight double precision NOT NULL
);
INSERT INTO event_types (name, weight) VALUES
    ('view', 1), ('click', 2), ('like', 4), ('share', 4), ('bookmark', 3),
    ('add_to_cart', 6), ('purchase', 10), ('rate', 1), ('dislike', -4);

CREATE TABLE model_versions (
    id serial PRIMARY KEY,
    kind text NOT NULL DEFAULT 'als',
    params jsonb NOT NULL DEFAULT '{}'::jsonb,
    training_stats jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
    trained_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'active', 'retired'))
);
CREATE UNIQUE INDEX ux_model_versions_active ON model_versions (kind) WHERE status = 'active';

CREATE TABLE user_factors (
    model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    factors vector NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_version_id, user_id)
);
CREATE INDEX ix_user_factors_user ON user_factors (user_id);

CREATE TABLE item_factors (
    model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    content_id text NOT NULL REFERENCES content (content_id) ON DELETE CASCADE,
    factors vector NOT NULL,
    PRIMARY KEY (model_version_id, content_id)
);

CREATE TABLE api_keys (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    key_hash text NOT NULL UNIQUE,
    prefix text NOT NULL,
    role text NOT NULL CHECK (role IN ('client', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
"""

DROP = r"""
DROP TABLE IF EXISTS api_keys, item_factors, user_factors, model_versions, event_types CASCADE;
DROP TABLE IF EXISTS event_keys, events CASCADE;
DROP FUNCTION IF EXISTS create_event_partitions(integer);
DROP FUNCTION IF EXISTS create_event_partition(timestamptz);
DROP TABLE IF EXISTS content, users CASCADE;
DROP FUNCTION IF EXISTS recengine_tags_text(text[]);
DROP FUNCTION IF EXISTS set_updated_at();
"""


def upgrade() -> None:
    """Create the whole data model."""
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for block in (FUNCTIONS, USERS, CONTENT, EVENTS, REFERENCE):
        op.execute(block)


def downgrade() -> None:
    """Drop everything this revision created (the extension stays: other schemas may use it)."""
    op.execute(DROP)
