"""Reviews by pair: the story page lists the decisions on a story's pairs.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    # Also serves deleting a pair (reviews cascade) without a scan of every review.
    op.execute("CREATE INDEX reviews_pair ON reviews (pair_id, created_at DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX reviews_pair")
