"""Sweeper: which classifications have been through pairing, and items by fetch time.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"

UPGRADE = """
-- Set by pairing in its transaction: a classification still NULL after a grace period lost its
-- pairing message (a killed worker, an outage) and the sweeper queues it again.
ALTER TABLE classifications ADD COLUMN paired_at timestamptz;
-- Rows from before the sweeper were paired by the pipeline of their day.
UPDATE classifications SET paired_at = created_at;
CREATE INDEX classifications_unpaired ON classifications (created_at) WHERE paired_at IS NULL;
CREATE INDEX items_fetched ON items (fetched_at);
"""

DOWNGRADE = """
DROP INDEX items_fetched;
DROP INDEX classifications_unpaired;
ALTER TABLE classifications DROP COLUMN paired_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
