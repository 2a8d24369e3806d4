"""Ingestion: feed scheduling and health, item details, revisions, cross-feed duplicates.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"

UPGRADE = """
ALTER TABLE feeds
    ADD COLUMN host            text NOT NULL DEFAULT '',
    ADD COLUMN tags            text[] NOT NULL DEFAULT '{}',
    ADD COLUMN min_interval_s  integer NOT NULL DEFAULT 300 CHECK (min_interval_s >= 10),
    ADD COLUMN max_interval_s  integer NOT NULL DEFAULT 86400 CHECK (max_interval_s >= 10),
    ADD COLUMN failing_since   timestamptz,
    ADD COLUMN disabled_reason text,
    ADD COLUMN body_hash       text;
UPDATE feeds SET host = lower(substring(url from '^[a-z]+://([^/:?#]+)'));
CREATE INDEX feeds_host_leased ON feeds (host) WHERE lease_until IS NOT NULL;

ALTER TABLE items
    ADD COLUMN author        text,
    ADD COLUMN content_html  text NOT NULL DEFAULT '',
    ADD COLUMN updated_at    timestamptz,
    ADD COLUMN categories    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN enclosures    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN revision      integer NOT NULL DEFAULT 1,
    ADD COLUMN text_hash     text,
    ADD COLUMN duplicate_of  bigint REFERENCES items (id) ON DELETE SET NULL;
CREATE INDEX items_url ON items (url) WHERE url IS NOT NULL;
CREATE INDEX items_text_hash ON items (text_hash) WHERE text_hash IS NOT NULL;
CREATE INDEX items_duplicate_of ON items (duplicate_of) WHERE duplicate_of IS NOT NULL;

CREATE TABLE item_revisions (
    id           bigserial PRIMARY KEY,
    item_id      bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    revision     integer NOT NULL,
    title        text NOT NULL,
    summary      text NOT NULL,
    content_hash text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, revision)
);
"""

DOWNGRADE = """
DROP TABLE item_revisions;
ALTER TABLE items DROP COLUMN author, DROP COLUMN content_html, DROP COLUMN updated_at,
    DROP COLUMN categories, DROP COLUMN enclosures, DROP COLUMN revision, DROP COLUMN text_hash,
    DROP COLUMN duplicate_of;
ALTER TABLE feeds DROP COLUMN host, DROP COLUMN tags, DROP COLUMN min_interval_s,
    DROP COLUMN max_interval_s, DROP COLUMN failing_since, DROP COLUMN disabled_reason,
    DROP COLUMN body_hash;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
