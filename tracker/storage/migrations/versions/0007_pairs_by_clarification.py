"""Pairs found from the clarification's side: an index on pairs (clarification_id).

Revision ID: 0007
Revises: 0005

Every pairing run spreads the clarifications of the touched stories to all their outlets
(`pairs.spread_to_stories`), looking pairs up by clarification; the unique key leads with the
rumour, so without this index each run reads the whole pairs table.
"""

from alembic import op

revision = "0007"
down_revision = "0005"


def upgrade() -> None:
    op.execute("CREATE INDEX pairs_clarification ON pairs (clarification_id)")


def downgrade() -> None:
    op.execute("DROP INDEX pairs_clarification")
