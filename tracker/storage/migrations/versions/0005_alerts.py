"""Alerts: richer subscriptions (filters, digests, follows, ops), outbox events, heartbeats.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"

UPGRADE = """
ALTER TABLE alert_subscriptions
    DROP CONSTRAINT alert_subscriptions_email_keywords_key,
    DROP CONSTRAINT alert_subscriptions_delivery_check,
    ADD COLUMN kind            text NOT NULL DEFAULT 'rumours'
                               CHECK (kind IN ('rumours', 'story', 'ops')),
    ADD COLUMN tags            text[] NOT NULL DEFAULT '{}',
    ADD COLUMN feed_kinds      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN languages       text[] NOT NULL DEFAULT '{}',
    ADD COLUMN story_id        bigint REFERENCES stories (id) ON DELETE CASCADE,
    ADD COLUMN item_id         bigint REFERENCES items (id) ON DELETE CASCADE,
    ADD COLUMN digest_at       time,
    ADD COLUMN time_zone       text NOT NULL DEFAULT 'UTC',
    ADD COLUMN last_digest_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN unsubscribed_at timestamptz,
    ADD CONSTRAINT alert_subscriptions_delivery_check
        CHECK (delivery IN ('immediate', 'hourly', 'daily')),
    ADD CONSTRAINT alert_subscriptions_daily_time
        CHECK ((delivery = 'daily') = (digest_at IS NOT NULL)),
    ADD CONSTRAINT alert_subscriptions_follows_one
        CHECK ((kind = 'story') = (story_id IS NOT NULL OR item_id IS NOT NULL));
-- One row per rule and address: subscribing again updates (and re-activates) it.
CREATE UNIQUE INDEX alert_subscriptions_rule ON alert_subscriptions
    (email, kind, keywords, tags, feed_kinds, languages, story_id, item_id) NULLS NOT DISTINCT;
CREATE INDEX alert_subscriptions_follow_story ON alert_subscriptions (story_id)
    WHERE story_id IS NOT NULL;
CREATE INDEX alert_subscriptions_follow_item ON alert_subscriptions (item_id)
    WHERE item_id IS NOT NULL;

ALTER TABLE alert_outbox
    DROP CONSTRAINT alert_outbox_status_check,
    ADD CONSTRAINT alert_outbox_status_check CHECK (status IN
        ('pending', 'sending', 'sent', 'dead', 'held', 'digested', 'cancelled')),
    ADD COLUMN kind            text NOT NULL DEFAULT 'message',
    ADD COLUMN subscription_id bigint REFERENCES alert_subscriptions (id) ON DELETE SET NULL,
    ADD COLUMN item_id         bigint REFERENCES items (id) ON DELETE SET NULL,
    ADD COLUMN payload         jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN digest_id       bigint REFERENCES alert_outbox (id) ON DELETE SET NULL,
    ALTER COLUMN body_text SET DEFAULT '';
CREATE INDEX alert_outbox_held ON alert_outbox (subscription_id) WHERE status = 'held';
CREATE INDEX alert_outbox_subscription_item ON alert_outbox (subscription_id, item_id)
    WHERE item_id IS NOT NULL;
CREATE INDEX alert_outbox_failed ON alert_outbox (id)
    WHERE status = 'dead' OR last_error IS NOT NULL;

CREATE TABLE worker_heartbeats (
    queue    text PRIMARY KEY,
    hostname text NOT NULL,
    beat_at  timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP TABLE worker_heartbeats;
DELETE FROM alert_outbox WHERE status IN ('held', 'digested', 'cancelled');
ALTER TABLE alert_outbox
    DROP COLUMN digest_id, DROP COLUMN payload, DROP COLUMN item_id,
    DROP COLUMN subscription_id, DROP COLUMN kind,
    ALTER COLUMN body_text DROP DEFAULT,
    DROP CONSTRAINT alert_outbox_status_check,
    ADD CONSTRAINT alert_outbox_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'dead'));
DROP INDEX alert_subscriptions_rule;
DELETE FROM alert_subscriptions WHERE kind <> 'rumours' OR delivery <> 'immediate'
    OR unsubscribed_at IS NOT NULL;
ALTER TABLE alert_subscriptions
    DROP CONSTRAINT alert_subscriptions_follows_one,
    DROP CONSTRAINT alert_subscriptions_daily_time,
    DROP CONSTRAINT alert_subscriptions_delivery_check,
    DROP COLUMN unsubscribed_at, DROP COLUMN last_digest_at, DROP COLUMN time_zone,
    DROP COLUMN digest_at, DROP COLUMN item_id, DROP COLUMN story_id, DROP COLUMN languages,
    DROP COLUMN feed_kinds, DROP COLUMN tags, DROP COLUMN kind,
    ADD CONSTRAINT alert_subscriptions_delivery_check CHECK (delivery IN ('immediate')),
    ADD CONSTRAINT alert_subscriptions_email_keywords_key UNIQUE (email, keywords);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
