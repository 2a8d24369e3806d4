"""Pairing by role, and a fact-check archive searchable for years.

Revision ID: 0017
Revises: 0016

`pairing_candidates.label` is now the item's pairing role (domain.pairing_role): items of
official and fact-checking feeds are clarifications by their feed's kind, and items of other
feeds are claims when the classifier gives them a rumour probability above a floor, not only
when rumour is its first label. Each row keeps its feed's kind, so the clarifications of the
kinds an operator archives (TRACKER_PAIR_ARCHIVE_DAYS: fact-checks and official statements
for ten years by default) are searched beyond the pairing window. The week-tagged index
(0007, 0016) serves the window; the archive is searched through a plain index of the
clarifications' terms, as listing ten years of weeks would cost a tsquery of 520 tags per term.
"""

from alembic import op

revision = "0017"
down_revision = "0016"

UPGRADE = """
ALTER TABLE pairing_candidates ADD COLUMN kind text;
UPDATE pairing_candidates p SET kind = f.kind
    FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.id = p.item_id;
ALTER TABLE pairing_candidates ALTER COLUMN kind SET NOT NULL;
CREATE INDEX pairing_candidates_archive ON pairing_candidates USING gin (tsv)
    WHERE label = 'clarification';
"""

DOWNGRADE = """
DROP INDEX pairing_candidates_archive;
ALTER TABLE pairing_candidates DROP COLUMN kind;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
