"""Server-side web sessions, and unsubscribe links bound to a subscription's generation.

Revision ID: 0019
Revises: 0018

The signed cookie now carries only a random session id; `web_sessions` keeps the sha256 of it,
so a logout deletes the row and a copied cookie stops working, and a stolen cookie cannot be
kept alive past the absolute lifetime by requests that re-issue it. Each row keeps the user's
session epoch when it began, as the cookie did, so "as today" a password, role or disabling
change ends the user's sessions.

`alert_subscriptions.generation` goes up each time an unsubscribed rule is subscribed again;
unsubscribe tokens name it, so a link from before the re-subscription no longer works.
"""

from alembic import op

revision = "0019"
down_revision = "0018"

UPGRADE = """
CREATE TABLE web_sessions (
    id bigserial PRIMARY KEY,
    digest bytea NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    epoch integer NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    user_agent text NOT NULL DEFAULT '',
    address text NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
ALTER TABLE alert_subscriptions ADD COLUMN generation integer NOT NULL DEFAULT 0;
"""

DOWNGRADE = """
ALTER TABLE alert_subscriptions DROP COLUMN generation;
DROP TABLE web_sessions;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
