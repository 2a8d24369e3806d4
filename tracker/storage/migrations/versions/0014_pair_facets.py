"""What the queue and the API filter pairs by, kept on the pair: a selective filter then reads
one GIN index instead of walking the ranking and joining both items and feeds for every pair.

`pairs.facets` holds, for both sides, 'lang:<tag>' (lower case, and its primary subtag),
'kind:<feed kind>' and 'tag:<feed tag>'. Triggers keep it true: computed when a pair is
stored, and again for the pairs of a feed whose kind or tags change, or of an item whose
language or feed changes.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"

UPGRADE = """
CREATE FUNCTION pair_facets(rumour bigint, clarification bigint) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT facet ORDER BY facet), '{}')
    FROM items i JOIN feeds f ON f.id = i.feed_id,
         unnest(ARRAY['lang:' || lower(i.language),
                      'lang:' || split_part(lower(i.language), '-', 1),
                      'kind:' || f.kind]
                || array(SELECT 'tag:' || t FROM unnest(f.tags) AS t)) AS facet
    WHERE i.id IN (rumour, clarification) AND facet IS NOT NULL
$$;

ALTER TABLE pairs ADD COLUMN facets text[] NOT NULL DEFAULT '{}';
UPDATE pairs SET facets = pair_facets(rumour_id, clarification_id);
CREATE INDEX pairs_facets ON pairs USING gin (facets);
-- The filters no longer join items for every pair (0012 added this for those joins).
DROP INDEX items_filtered;

CREATE FUNCTION pairs_set_facets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.facets := pair_facets(NEW.rumour_id, NEW.clarification_id);
    RETURN NEW;
END $$;
CREATE TRIGGER pairs_facets BEFORE INSERT OR UPDATE OF rumour_id, clarification_id ON pairs
    FOR EACH ROW EXECUTE FUNCTION pairs_set_facets();

CREATE FUNCTION feeds_refresh_pair_facets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pairs SET facets = pair_facets(rumour_id, clarification_id)
    WHERE rumour_id IN (SELECT id FROM items WHERE feed_id = NEW.id)
       OR clarification_id IN (SELECT id FROM items WHERE feed_id = NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER feeds_pair_facets AFTER UPDATE OF kind, tags ON feeds
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind OR OLD.tags IS DISTINCT FROM NEW.tags)
    EXECUTE FUNCTION feeds_refresh_pair_facets();

CREATE FUNCTION items_refresh_pair_facets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pairs SET facets = pair_facets(rumour_id, clarification_id)
    WHERE rumour_id = NEW.id OR clarification_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER items_pair_facets AFTER UPDATE OF language, feed_id ON items
    FOR EACH ROW
    WHEN (OLD.language IS DISTINCT FROM NEW.language OR OLD.feed_id IS DISTINCT FROM NEW.feed_id)
    EXECUTE FUNCTION items_refresh_pair_facets();
"""

DOWNGRADE = """
DROP TRIGGER items_pair_facets ON items;
DROP FUNCTION items_refresh_pair_facets();
DROP TRIGGER feeds_pair_facets ON feeds;
DROP FUNCTION feeds_refresh_pair_facets();
DROP TRIGGER pairs_facets ON pairs;
DROP FUNCTION pairs_set_facets();
CREATE INDEX items_filtered ON items (id) INCLUDE (feed_id, language);
DROP INDEX pairs_facets;
ALTER TABLE pairs DROP COLUMN facets;
DROP FUNCTION pair_facets(bigint, bigint);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
