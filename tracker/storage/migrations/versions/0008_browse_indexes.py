"""Indexes for browsing: item search and pair lists in queue order.

Revision ID: 0008
Revises: 0007

Item search (`/api/v1/items?q=`) matches the items' own tsvector; since 0007 the only text
index holds week-tagged terms, which a search without a window cannot use. Pair lists sort
by score, then recency, then id (the keyset of their pages): with these indexes a page is an
index range, not a sort of every pair (about 140 ms at 100,000 pairs, under 1 ms indexed).
"""

from alembic import op

revision = "0008"
down_revision = "0007"

UPGRADE = """
CREATE INDEX items_tsv ON items USING gin (tsv);
CREATE INDEX pairs_ranked ON pairs (score DESC, created_at DESC, id DESC);
CREATE INDEX pairs_queue_ranked ON pairs (status, score DESC, created_at DESC, id DESC);
DROP INDEX pairs_queue;
"""

DOWNGRADE = """
CREATE INDEX pairs_queue ON pairs (status, score DESC);
DROP INDEX pairs_queue_ranked;
DROP INDEX pairs_ranked;
DROP INDEX items_tsv;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
