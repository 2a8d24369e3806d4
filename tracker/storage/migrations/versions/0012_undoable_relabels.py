"""Undoable relabels; the review queue's filters read items from a narrow covering index.

An analyst's item label can be taken back, as a pair decision can. The queue and the API walk
pairs in rank order and keep those whose items match the filters (language, feed kind, tag):
each pair costs two item lookups, which from the wide items heap at a million items are cold
random reads; (id) INCLUDE (feed_id, language) answers them with index-only scans instead.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"

UPGRADE = """
-- An undone label stays for the record; readers skip it, so the label before it stands again.
ALTER TABLE item_labels ADD COLUMN undone_at timestamptz;
CREATE INDEX item_labels_user_recent ON item_labels (user_id, id DESC) WHERE undone_at IS NULL;
CREATE INDEX items_filtered ON items (id) INCLUDE (feed_id, language);
"""

DOWNGRADE = """
DROP INDEX items_filtered;
DROP INDEX item_labels_user_recent;
DELETE FROM item_labels WHERE undone_at IS NOT NULL;
ALTER TABLE item_labels DROP COLUMN undone_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
