"""First copies found by index alone: url and text_hash indexes carry the item id.

Revision ID: 0015
Revises: 0014

Each insert looks up the first earlier item of another feed with the same URL or text
(`min(id) WHERE url = ...`). With an index on the URL alone, a planner without statistics (a
new database, or a table that grew faster than autovacuum analyses it) may walk the primary
key in id order hunting for the first match; for a URL seen nowhere, the usual case, that reads
the whole table. Measured on 10,000 stored items with autovacuum off: 200 feeds of 50 new
items took over 60 s of PostgreSQL CPU (stopped there) with the old indexes and 2.2 s with
these. With the id in the index, `min(id)` is the first entry of the URL's range, whatever the
statistics say.
"""

from alembic import op

revision = "0015"
down_revision = "0014"

UPGRADE = """
CREATE INDEX items_url_id ON items (url, id) WHERE url IS NOT NULL;
CREATE INDEX items_text_hash_id ON items (text_hash, id) WHERE text_hash IS NOT NULL;
DROP INDEX items_url;
DROP INDEX items_text_hash;
"""

DOWNGRADE = """
CREATE INDEX items_url ON items (url) WHERE url IS NOT NULL;
CREATE INDEX items_text_hash ON items (text_hash) WHERE text_hash IS NOT NULL;
DROP INDEX items_url_id;
DROP INDEX items_text_hash_id;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
