"""Accounts: disabled users, revocable sessions (epoch), API tokens, login throttling.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"

UPGRADE = """
ALTER TABLE users
    ADD COLUMN disabled_at   timestamptz,
    -- Copied into each signed session cookie at login; bumping it ends every session.
    ADD COLUMN session_epoch integer NOT NULL DEFAULT 0;

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    -- sha256 of the token: tokens are 32 random bytes, so a slow hash adds nothing.
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- One row per throttled key (an account's email or a client address), shared by every web
-- process: failures in the current window, and the lock they led to.
CREATE TABLE login_throttle (
    scope        text NOT NULL CHECK (scope IN ('account', 'address')),
    key          text NOT NULL,
    failures     integer NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    lockouts     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);
"""

DOWNGRADE = """
DROP TABLE login_throttle, api_tokens;
ALTER TABLE users DROP COLUMN session_epoch, DROP COLUMN disabled_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
