"""Review queue: claims on pairs, undoable reviews, saved views per user.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"

UPGRADE = """
ALTER TABLE pairs
    -- A short lease: the analyst reviewing the pair; others see it as taken until it expires.
    ADD COLUMN claimed_by    bigint REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN claimed_until timestamptz;
-- The queue's ranking is served by pairs_queue_ranked (0008).
CREATE INDEX pairs_claimed ON pairs (claimed_by, claimed_until) WHERE claimed_by IS NOT NULL;

ALTER TABLE reviews
    -- What the pair was before this review, so undo can put it back.
    ADD COLUMN previous_status text,
    ADD COLUMN undone_at       timestamptz;
CREATE INDEX reviews_user_recent ON reviews (user_id, id DESC) WHERE undone_at IS NULL;

CREATE TABLE saved_views (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    query      text NOT NULL CHECK (length(query) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);
"""

DOWNGRADE = """
DROP TABLE saved_views;
DROP INDEX reviews_user_recent;
ALTER TABLE reviews DROP COLUMN undone_at, DROP COLUMN previous_status;
DROP INDEX pairs_claimed;
ALTER TABLE pairs DROP COLUMN claimed_until, DROP COLUMN claimed_by;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
