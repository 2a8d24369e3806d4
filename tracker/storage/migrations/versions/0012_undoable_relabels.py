"""Undoable relabels: an analyst's item label can be taken back, as a pair decision can.

Revision ID: 0012
Revises: 0009
"""

from alembic import op

revision = "0012"
down_revision = "0009"

UPGRADE = """
-- An undone label stays for the record; readers skip it, so the label before it stands again.
ALTER TABLE item_labels ADD COLUMN undone_at timestamptz;
CREATE INDEX item_labels_user_recent ON item_labels (user_id, id DESC) WHERE undone_at IS NULL;
"""

DOWNGRADE = """
DROP INDEX item_labels_user_recent;
DELETE FROM item_labels WHERE undone_at IS NOT NULL;
ALTER TABLE item_labels DROP COLUMN undone_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
