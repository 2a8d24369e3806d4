"""Pairing searches its own table of rumours and clarifications, not every item.

Revision ID: 0016
Revises: 0015

Candidate retrieval only ever wants items some model labelled rumour or clarification, yet
the index of week-tagged terms (0007) covered every item, so every insert paid for it: about
half of PostgreSQL's CPU per new item (10,000 items of `tracker bench ingest`: 2.9 s of
database CPU with it, 1.5 s without). Classification now copies each rumour and clarification
into `pairing_candidates` with its label, model version, time and terms, and the index is on
that table: ingestion no longer maintains it, and a search neither reads the postings of
items labelled other nor looks their labels up. An edited item's row follows its text
(`items.upsert`).
"""

from alembic import op

revision = "0016"
down_revision = "0015"

UPGRADE = """
CREATE TABLE pairing_candidates (
    item_id       bigint NOT NULL,
    model_version text NOT NULL,
    label         text NOT NULL CHECK (label IN ('rumour', 'clarification')),
    seen_at       timestamptz NOT NULL,
    tsv           tsvector NOT NULL,
    PRIMARY KEY (item_id, model_version),
    FOREIGN KEY (item_id, model_version)
        REFERENCES classifications (item_id, model_version) ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO pairing_candidates (item_id, model_version, label, seen_at, tsv)
    SELECT c.item_id, c.model_version, c.label, coalesce(i.published_at, i.fetched_at), i.tsv
    FROM classifications c JOIN items i ON i.id = c.item_id
    WHERE c.label IN ('rumour', 'clarification');
CREATE INDEX pairing_candidates_week_terms ON pairing_candidates
    USING gin (item_week_terms(tsv, seen_at));
DROP INDEX items_week_terms;
"""

DOWNGRADE = """
CREATE INDEX items_week_terms ON items
    USING gin (item_week_terms(tsv, coalesce(published_at, fetched_at)));
DROP TABLE pairing_candidates;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
