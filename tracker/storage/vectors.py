"""Sentence vectors of pairing's rumours and clarifications (0018): stored at classification,
searched by pairing for the nearest items of a role, through pgvector's HNSW index where the
server has pgvector, exactly over the role's rows where it does not."""

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import psycopg
from psycopg.rows import class_row

from tracker.storage.items import ITEM_FOR_MODEL, ItemForModel

# Neighbours the HNSW graph search keeps (pgvector's default is 40): the window and model
# filters apply after it, so it must reach past the rows they drop.
EF_SEARCH = 200


def column_type(conn: psycopg.Connection) -> str:
    """`vector` (pgvector) or `real[]`: what migration 0018 found on this server."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT format_type(atttypid, NULL) FROM pg_attribute
               WHERE attrelid = 'pairing_candidates'::regclass AND attname = 'embedding'"""
        )
        row = cur.fetchone()
    return "vector" if row is not None and row[0] == "vector" else "real[]"


def store(conn: psycopg.Connection, model_version: str, vectors: Mapping[int, np.ndarray]) -> None:
    """Set the vectors of items already copied into pairing's table under `model_version`."""
    if not vectors:
        return
    cast = "vector" if column_type(conn) == "vector" else "real[]"
    with conn.cursor() as cur:
        cur.execute(
            f"""UPDATE pairing_candidates p SET embedding = v.e::real[]::{cast}
                FROM unnest(%s::bigint[], %s::text[]) AS v(item_id, e)
                WHERE p.item_id = v.item_id AND p.model_version = %s""",
            (list(vectors), [_literal(v) for v in vectors.values()], model_version),
        )


def nearest(
    conn: psycopg.Connection,
    *,
    vector: np.ndarray,
    label: str,
    limit: int,
    model_version: str,
    arounds: Sequence[datetime],
    window_days: int,
    archive_days: Sequence[tuple[str, int]],
    exclude_id: int,
) -> list[ItemForModel]:
    """Up to `limit` items of the role `label` nearest `vector` in meaning, within `window_days`
    of one of `arounds`, or for clarifications of an archived kind (kind, days kept) up to its
    days before them; nearest first."""
    pgvector = column_type(conn) == "vector"
    distance = (
        "p.embedding <#> %(vector)s::real[]::vector"
        if pgvector
        else "-item_vector_dot(p.embedding, %(vector)s::real[])"
    )
    query = f"""WITH found AS (
            SELECT p.item_id AS id, {distance} AS distance
            FROM pairing_candidates p
            LEFT JOIN unnest(%(kinds)s::text[], %(days)s::int[]) AS a(kind, days)
                ON a.kind = p.kind AND p.label = 'clarification'
            WHERE p.label = %(label)s AND p.embedding IS NOT NULL
              AND p.model_version = %(version)s AND p.item_id <> %(exclude)s
              AND (EXISTS (SELECT 1 FROM unnest(%(arounds)s::timestamptz[]) w
                           WHERE p.seen_at - w BETWEEN -make_interval(days => %(window)s)
                                                   AND make_interval(days => %(window)s))
                   OR p.seen_at >= %(first)s - make_interval(days => a.days))
            ORDER BY distance
            LIMIT %(limit)s
        )
        {ITEM_FOR_MODEL} JOIN found ON found.id = i.id ORDER BY found.distance"""
    with conn.transaction(), conn.cursor(row_factory=class_row(ItemForModel), binary=True) as cur:
        if pgvector:
            cur.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
        cur.execute(
            query,
            {
                "vector": _literal(vector),
                "label": label,
                "version": model_version,
                "exclude": exclude_id,
                "arounds": list(arounds),
                "first": min(arounds),
                "window": window_days,
                "kinds": [kind for kind, _ in archive_days],
                "days": [days for _, days in archive_days],
                "limit": limit,
            },
            prepare=False,
        )
        return cur.fetchall()


def _literal(vector: np.ndarray) -> str:
    """A real[] literal: text is how both column types take a vector in."""
    return "{" + ",".join(f"{x:.6g}" for x in np.asarray(vector, dtype=np.float32)) + "}"
