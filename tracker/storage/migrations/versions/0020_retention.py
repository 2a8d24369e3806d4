"""Retention: find items by age, and delete them without scanning what points at them; backups
that restore.

Revision ID: 0020
Revises: 0019

`tracker prune` and its beat task delete items fetched longer ago than
TRACKER_RETAIN_ITEMS_DAYS, oldest first, in batches that start after the last item of the one
before: `items_fetched` (0013) gains the id to give that order. Many items share a fetch time
(one feed's new items are stored in one transaction). Deleting an item sets
`alert_outbox.item_id` to null, which without `alert_outbox_item` would read the whole outbox
once per deleted item.

pg_restore runs with an empty search_path, so an index over a function must find every
function that one calls by its schema: `item_week_terms` (0007) calls `public.item_week` now,
or a dump of any database would not restore (`tracker restore`).
"""

from alembic import op

revision = "0020"
down_revision = "0019"

WEEK_TERMS = """
CREATE OR REPLACE FUNCTION item_week_terms(tsv tsvector, t timestamptz) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN tsv = ''::tsvector THEN ''::tsvector
                      ELSE array_to_tsvector(string_to_array(
                          array_to_string(tsvector_to_array(tsv), '@' || {week}(t) || chr(31))
                          || '@' || {week}(t), chr(31))) END $$;
"""

UPGRADE = (
    WEEK_TERMS.format(week="public.item_week")
    + """
DROP INDEX items_fetched;
CREATE INDEX items_fetched ON items (fetched_at, id);
CREATE INDEX alert_outbox_item ON alert_outbox (item_id) WHERE item_id IS NOT NULL;
"""
)

DOWNGRADE = (
    WEEK_TERMS.format(week="item_week")
    + """
DROP INDEX alert_outbox_item;
DROP INDEX items_fetched;
CREATE INDEX items_fetched ON items (fetched_at);
"""
)


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
