"""Model lifecycle: when each model was activated (for rollback), and analysts' item labels.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"

UPGRADE = """
ALTER TABLE models ADD COLUMN activated_at timestamptz;
UPDATE models SET activated_at = created_at WHERE active;

CREATE TABLE item_labels (
    id         bigserial PRIMARY KEY,
    item_id    bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    label      text NOT NULL CHECK (label IN ('rumour', 'clarification', 'other')),
    user_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX item_labels_item ON item_labels (item_id, created_at DESC);
"""

DOWNGRADE = """
DROP TABLE item_labels;
ALTER TABLE models DROP COLUMN activated_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
