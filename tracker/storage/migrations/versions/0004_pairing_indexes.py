"""Pairing retrieval at a million items: item weeks in the full-text index, labels in the key.

Revision ID: 0004
Revises: 0003

`items.candidates` looks for items sharing a distinctive term within ±N days. With the time
window as a separate B-tree condition, PostgreSQL intersects the text matches with every item
of the window (77,000 at a million items a year); with the week of each item as one more
lexeme in the same GIN index, the text match and the week are intersected inside the index,
led by the rarest terms. The label travels in the (item, model version) key so the label check
of each candidate is an index-only lookup.
"""

from alembic import op

revision = "0004"
down_revision = "0003"

UPGRADE = """
-- Epoch seconds do not depend on the time zone, so the week number is truly immutable.
CREATE FUNCTION item_week(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '~w' || floor(extract(epoch FROM t) / 604800)::bigint $$;

CREATE INDEX items_tsv_week ON items USING gin (
    (tsv || array_to_tsvector(ARRAY[item_week(coalesce(published_at, fetched_at))])));
DROP INDEX items_tsv;

ALTER TABLE classifications
    DROP CONSTRAINT classifications_item_id_model_version_key,
    ADD CONSTRAINT classifications_item_id_model_version_key
        UNIQUE (item_id, model_version) INCLUDE (label);
"""

DOWNGRADE = """
ALTER TABLE classifications
    DROP CONSTRAINT classifications_item_id_model_version_key,
    ADD CONSTRAINT classifications_item_id_model_version_key UNIQUE (item_id, model_version);
CREATE INDEX items_tsv ON items USING gin (tsv);
DROP INDEX items_tsv_week;
DROP FUNCTION item_week(timestamptz);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
