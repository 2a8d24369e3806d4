"""Sentence vectors of the rumours and clarifications pairing searches.

Revision ID: 0018
Revises: 0017

Each row of `pairing_candidates` gets the item's vector (classifiers/embedder.py, 384
dimensions, unit length), written at classification. Where the server has pgvector (pgserver,
the embedded default, ships it) the column is a `vector` with one HNSW index per pairing role,
so a search for the nearest clarifications reads only clarifications; where it does not (a
Debian PostgreSQL without the package), it is a `real[]`, searched exactly over the role's rows
(storage/vectors.py). The migration picks by what the server offers, so one migration serves
both. Rows classified before this have no vector: a pairing query without one computes it.
"""

from alembic import op
from sqlalchemy import text

revision = "0018"
down_revision = "0017"

DIMENSIONS = 384

PGVECTOR = f"""
ALTER TABLE pairing_candidates ADD COLUMN embedding vector({DIMENSIONS});
CREATE INDEX pairing_candidates_clarification_vectors ON pairing_candidates
    USING hnsw (embedding vector_ip_ops) WHERE label = 'clarification';
CREATE INDEX pairing_candidates_rumour_vectors ON pairing_candidates
    USING hnsw (embedding vector_ip_ops) WHERE label = 'rumour';
"""

# The dot product of two unit vectors is their cosine.
PLAIN = """
ALTER TABLE pairing_candidates ADD COLUMN embedding real[];
CREATE FUNCTION item_vector_dot(a real[], b real[]) RETURNS real
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT sum(x * y)::real FROM unnest(a, b) AS t(x, y) $$;
"""


def upgrade() -> None:
    bind = op.get_bind()
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    ).scalar()
    if available:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(PGVECTOR if available else PLAIN)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS pairing_candidates_clarification_vectors")
    op.execute("DROP INDEX IF EXISTS pairing_candidates_rumour_vectors")
    op.execute("ALTER TABLE pairing_candidates DROP COLUMN embedding")
    op.execute("DROP FUNCTION IF EXISTS item_vector_dot(real[], real[])")
