"""What each claim was compared with when it was paired.

Revision ID: 0021
Revises: 0020

A clarification scores its best claims again, each among that claim's own candidates
(pipeline/pairing.py), and finding those candidates again cost three searches per claim: at a
million items, two thirds of a clarification's pairing time. Pairing now keeps the ids a claim
was compared with, and each clarification that scores it later joins them, so a claim's
candidates are read back by id. A separate table, not a column of `pairing_candidates`: writing
there would copy the row's vector and terms into every one of its indexes. Claims paired before
this have no row and are searched once more, then kept.
"""

from alembic import op

revision = "0021"
down_revision = "0020"

UPGRADE = """
CREATE TABLE claim_candidates (
    item_id       bigint NOT NULL,
    model_version text NOT NULL,
    candidate_ids bigint[] NOT NULL,
    PRIMARY KEY (item_id, model_version),
    FOREIGN KEY (item_id, model_version) REFERENCES pairing_candidates (item_id, model_version)
        ON DELETE CASCADE ON UPDATE CASCADE
);
"""

DOWNGRADE = "DROP TABLE claim_candidates;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
