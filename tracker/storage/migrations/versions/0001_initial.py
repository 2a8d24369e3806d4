"""Initial schema: feeds, items, classifications, stories, pairs, users, reviews, alerts, ...

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None

UPGRADE = """
CREATE TABLE feeds (
    id              bigserial PRIMARY KEY,
    url             text NOT NULL UNIQUE,
    title           text,
    kind            text NOT NULL DEFAULT 'other'
                    CHECK (kind IN ('official', 'factcheck', 'media', 'social', 'other')),
    language        text,
    enabled         boolean NOT NULL DEFAULT true,
    status          text NOT NULL DEFAULT 'new',
    last_error      text,
    error_count     integer NOT NULL DEFAULT 0,
    etag            text,
    last_modified   text,
    poll_interval_s integer NOT NULL DEFAULT 900,
    next_poll_at    timestamptz NOT NULL DEFAULT now(),
    last_polled_at  timestamptz,
    lease_until     timestamptz,
    lease_token     uuid,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feeds_due ON feeds (next_poll_at) WHERE enabled;

CREATE TABLE stories (
    id            bigserial PRIMARY KEY,
    title         text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE items (
    id           bigserial PRIMARY KEY,
    feed_id      bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    dedupe_key   text NOT NULL,
    guid         text,
    url          text,
    title        text NOT NULL,
    summary      text NOT NULL DEFAULT '',
    language     text,
    published_at timestamptz,
    fetched_at   timestamptz NOT NULL DEFAULT now(),
    content_hash text NOT NULL,
    story_id     bigint REFERENCES stories (id) ON DELETE SET NULL,
    tsv          tsvector GENERATED ALWAYS AS (
                     to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(summary, ''))
                 ) STORED,
    UNIQUE (feed_id, dedupe_key)
);
CREATE INDEX items_tsv ON items USING gin (tsv);
CREATE INDEX items_seen ON items (coalesce(published_at, fetched_at));
CREATE INDEX items_story ON items (story_id);

CREATE TABLE classifications (
    id            bigserial PRIMARY KEY,
    item_id       bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    model_version text NOT NULL,
    label         text NOT NULL CHECK (label IN ('rumour', 'clarification', 'other')),
    probability   real NOT NULL,
    probabilities jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, model_version)
);
CREATE INDEX classifications_label ON classifications (label, model_version);

CREATE TABLE pairs (
    id               bigserial PRIMARY KEY,
    rumour_id        bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    clarification_id bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    score            real NOT NULL,
    explanation      jsonb NOT NULL DEFAULT '{}',
    scorer_version   text NOT NULL,
    status           text NOT NULL DEFAULT 'suggested'
                     CHECK (status IN ('suggested', 'confirmed', 'rejected')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (rumour_id, clarification_id),
    CHECK (rumour_id <> clarification_id)
);
CREATE INDEX pairs_queue ON pairs (status, score DESC);

CREATE TABLE users (
    id                   bigserial PRIMARY KEY,
    email                text NOT NULL UNIQUE,
    password_hash        text NOT NULL,
    role                 text NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    must_change_password boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reviews (
    id         bigserial PRIMARY KEY,
    pair_id    bigint NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    user_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    decision   text NOT NULL CHECK (decision IN ('confirm', 'reject', 'skip')),
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_subscriptions (
    id                bigserial PRIMARY KEY,
    user_id           bigint REFERENCES users (id) ON DELETE CASCADE,
    email             text NOT NULL,
    keywords          text[] NOT NULL DEFAULT '{}',
    min_probability   real NOT NULL DEFAULT 0.5,
    delivery          text NOT NULL DEFAULT 'immediate' CHECK (delivery IN ('immediate')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (email, keywords)
);

CREATE TABLE alert_outbox (
    id              bigserial PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body_text       text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at)
    WHERE status IN ('pending', 'sending');

CREATE TABLE models (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('item', 'pair')),
    version    text NOT NULL UNIQUE,
    artifact   bytea NOT NULL,
    metadata   jsonb NOT NULL DEFAULT '{}',
    active     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX models_one_active ON models (kind) WHERE active;

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text,
    details    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP TABLE audit_log, models, alert_outbox, alert_subscriptions, reviews, users, pairs,
    classifications, items, stories, feeds;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
