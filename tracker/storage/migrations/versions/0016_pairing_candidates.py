"""Pairing searches its own table of rumours and clarifications, not every item.

Revision ID: 0016
Revises: 0015

Candidate retrieval only ever wants items some model labelled rumour or clarification, yet
every insert paid for its terms: the `tsv` column (0001), computed for every item, and the
index of week-tagged terms on it (0007), about half of PostgreSQL's CPU per new item.
Classification now copies each rumour and clarification into `pairing_candidates` with its
label, model version, time and terms (`item_terms`, what `tsv` held), and the index is on that
table; `items.tsv` goes. Ingestion maintains neither, and a search neither reads the postings
of items labelled other nor looks their labels up. An edited item's row follows its text
(`items.upsert`). Term frequencies for choosing distinctive terms now come from this table's
statistics: the postings a search reads are this table's.
"""

from alembic import op

revision = "0016"
down_revision = "0015"

UPGRADE = """
-- The words of an item's title and summary, accents kept: pairing compares items across
-- languages on them.
CREATE FUNCTION item_terms(title text, summary text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(summary, '')) $$;

CREATE TABLE pairing_candidates (
    item_id       bigint NOT NULL,
    model_version text NOT NULL,
    label         text NOT NULL CHECK (label IN ('rumour', 'clarification')),
    seen_at       timestamptz NOT NULL,
    tsv           tsvector NOT NULL,
    PRIMARY KEY (item_id, model_version),
    FOREIGN KEY (item_id, model_version) REFERENCES classifications (item_id, model_version)
        ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO pairing_candidates (item_id, model_version, label, seen_at, tsv)
    SELECT c.item_id, c.model_version, c.label, coalesce(i.published_at, i.fetched_at), i.tsv
    FROM classifications c JOIN items i ON i.id = c.item_id
    WHERE c.label IN ('rumour', 'clarification');
CREATE INDEX pairing_candidates_week_terms ON pairing_candidates
    USING gin (item_week_terms(tsv, seen_at));
ANALYZE pairing_candidates;
DROP INDEX items_week_terms;
ALTER TABLE items DROP COLUMN tsv;
"""

DOWNGRADE = """
ALTER TABLE items ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(summary, ''))) STORED;
CREATE INDEX items_week_terms ON items
    USING gin (item_week_terms(tsv, coalesce(published_at, fetched_at)));
DROP TABLE pairing_candidates;
DROP FUNCTION item_terms(text, text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
