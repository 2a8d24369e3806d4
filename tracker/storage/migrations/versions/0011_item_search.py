"""Item search in each item's own language: stemmed terms, weighted title over summary.

Revision ID: 0011
Revises: 0010

`tsv` (the 'simple' configuration, accents kept) stays as it is: pairing compares items across
languages on it and reads its statistics. Search gets its own column: the item's language picks
the text search configuration (English 'ministries' finds 'ministry'), 'simple' for languages
PostgreSQL has none for (Ukrainian, Polish, ...). A query without a language is read in every
configuration at once (OR), since its words may be in any of them.
"""

from alembic import op

revision = "0011"
down_revision = "0010"

# Primary language subtag -> configuration; every one exists in PostgreSQL 14 and later.
CONFIGS = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}

_WHEN = "\n".join(
    f"        WHEN '{code}' THEN 'pg_catalog.{name}'::regconfig" for code, name in CONFIGS.items()
)
_ALL = ", ".join(f"'pg_catalog.{name}'" for name in sorted({*CONFIGS.values(), "simple"}))

UPGRADE = f"""
-- en, en-GB, en_US and EN all read as English; no language or an unknown one as 'simple'.
CREATE FUNCTION item_search_config(language text) RETURNS regconfig
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE split_part(translate(lower(language), '_', '-'), '-', 1)
{_WHEN}
        ELSE 'pg_catalog.simple'::regconfig END $$;

-- The OR of tsqueries (the || operator's function), first non-null value as the start.
CREATE AGGREGATE item_tsquery_or(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);

-- Web-search syntax read in the language's configuration, or in all of them without one.
CREATE FUNCTION item_search_query(q text, language text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN language IS NOT NULL
                      THEN websearch_to_tsquery(item_search_config(language), q)
                      ELSE (SELECT item_tsquery_or(DISTINCT websearch_to_tsquery(c, q))
                            FROM unnest(ARRAY[{_ALL}]::regconfig[]) AS c) END $$;

-- Written out rather than in a function: a column's expression refers to functions by oid, so
-- a restore with an empty search_path (pg_dump's) still computes it.
ALTER TABLE items ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector(item_search_config(language), coalesce(title, '')), 'A')
    || setweight(to_tsvector(item_search_config(language), coalesce(summary, '')), 'B')) STORED;
CREATE INDEX items_search_tsv ON items USING gin (search_tsv);
-- Only the API's search used it (pairing has items_week_terms, 0007).
DROP INDEX items_tsv;
"""

DOWNGRADE = """
CREATE INDEX items_tsv ON items USING gin (tsv);
ALTER TABLE items DROP COLUMN search_tsv;
DROP FUNCTION item_search_query(text, text);
DROP AGGREGATE item_tsquery_or(tsquery);
DROP FUNCTION item_search_config(text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
