"""Classifications: one row per (item, model version), written once."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from tracker.domain import Prediction
from tracker.storage.items import ITEM_FOR_MODEL, ItemForModel


def insert(
    conn: psycopg.Connection, model_version: str, predictions: Sequence[tuple[int, Prediction]]
) -> list[int]:
    """Store predictions, and copy the rumours and clarifications among them into the table
    pairing searches (0016); returns the item ids classified now (not by an earlier delivery)."""
    stored: list[int] = []
    with conn.cursor() as cur:
        for item_id, p in predictions:
            cur.execute(
                """INSERT INTO classifications (item_id, model_version, label, probability,
                                                probabilities)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (item_id, model_version) DO NOTHING RETURNING item_id""",
                (item_id, model_version, p.label, p.probability, Jsonb(p.probabilities)),
            )
            if cur.fetchone() is not None:
                stored.append(item_id)
    add_pairing_candidates(conn, model_version, stored)
    return stored


def add_pairing_candidates(
    conn: psycopg.Connection, model_version: str, item_ids: Sequence[int]
) -> None:
    """Copy those of the items this version labelled rumour or clarification, with their time
    and terms, into the table pairing searches (0016)."""
    if not item_ids:
        return
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO pairing_candidates (item_id, model_version, label, seen_at, tsv)
               SELECT c.item_id, c.model_version, c.label,
                      coalesce(i.published_at, i.fetched_at), item_terms(i.title, i.summary)
               FROM classifications c JOIN items i ON i.id = c.item_id
               WHERE c.model_version = %s AND c.item_id = ANY(%s)
                 AND c.label IN ('rumour', 'clarification')""",
            (model_version, list(item_ids)),
        )


def labels(
    conn: psycopg.Connection, model_version: str, item_ids: Sequence[int]
) -> dict[int, tuple[str, float]]:
    with conn.cursor() as cur:
        cur.execute(
            """SELECT item_id, label, probability FROM classifications
               WHERE model_version = %s AND item_id = ANY(%s)""",
            (model_version, list(item_ids)),
        )
        return {row[0]: (row[1], row[2]) for row in cur.fetchall()}


def mark_paired(conn: psycopg.Connection, model_version: str, item_ids: Sequence[int]) -> None:
    """Record that pairing ran for these items (call in pairing's transaction)."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE classifications SET paired_at = now()
               WHERE model_version = %s AND item_id = ANY(%s) AND paired_at IS NULL""",
            (model_version, list(item_ids)),
        )


def unpaired(
    conn: psycopg.Connection, model_version: str, grace_s: float, lookback_s: float, limit: int
) -> list[int]:
    """Items classified by this version longer than `grace_s` ago that pairing never saw."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT item_id FROM classifications
               WHERE paired_at IS NULL AND model_version = %s
                 AND created_at < now() - make_interval(secs => %s)
                 AND created_at > now() - make_interval(secs => %s)
               ORDER BY created_at LIMIT %s""",
            (model_version, grace_s, lookback_s, limit),
        )
        return [row[0] for row in cur.fetchall()]


@dataclass(frozen=True)
class ContextQuery:
    """One new item's search for similar earlier items: words to match and rank by, its
    language (for stemming them) and time."""

    item_id: int
    words: Sequence[str]
    language: str | None
    seen_at: datetime


# Per new item, the earlier items of the window whose search text (0011, maintained at ingest
# for every item) holds one of its words, best rank first, with the probabilities stored last
# for them by whichever model: a model switch keeps the context of the items before it.
CONTEXT = (
    """WITH q AS (
        SELECT * FROM unnest(%(ids)s::bigint[], %(words)s::text[], %(languages)s::text[],
                             %(around)s::timestamptz[]) AS q(id, words, language, around)
    ),
    found AS (
        SELECT DISTINCT ON (f.id) f.id, f.probabilities, f.label, f.probability
        FROM q CROSS JOIN LATERAL (
            SELECT i.id, c.probabilities, c.label, c.probability
            FROM items i
            CROSS JOIN LATERAL (
                SELECT probabilities, label, probability FROM classifications
                WHERE item_id = i.id ORDER BY created_at DESC LIMIT 1
            ) c
            WHERE i.search_tsv @@ to_tsquery(item_search_config(q.language), q.words)
              AND coalesce(i.published_at, i.fetched_at)
                  BETWEEN q.around - make_interval(secs => %(window)s) AND q.around
              AND i.id <> ALL(%(ids)s::bigint[])
            ORDER BY ts_rank(i.search_tsv, to_tsquery(item_search_config(q.language), q.words))
                     DESC, i.id DESC
            LIMIT %(limit)s
        ) f
    )
    SELECT found.probabilities, found.label, found.probability, """
    + ITEM_FOR_MODEL.removeprefix("SELECT ")
    + """ JOIN found ON found.id = i.id ORDER BY i.id"""
)


def context(
    conn: psycopg.Connection, queries: Sequence[ContextQuery], window_s: float, limit: int
) -> list[tuple[ItemForModel, dict[str, float]]]:
    """Classified items up to `window_s` older than each query's item that share one of its
    words, at most `limit` per query (best full-text rank first), each once, with the
    probabilities stored last for it."""
    queries = [q for q in queries if q.words]
    if not queries:
        return []
    with conn.cursor() as cur:
        # Never prepared, as pairing's candidate query: plans for the actual words are faster.
        cur.execute(
            CONTEXT,
            {
                "ids": [q.item_id for q in queries],
                # Words are \w+ runs (query_terms): safe as to_tsquery operands.
                "words": [" | ".join(q.words) for q in queries],
                "languages": [q.language for q in queries],
                "around": [q.seen_at for q in queries],
                "window": window_s,
                "limit": limit,
            },
            prepare=False,
        )
        found = []
        for probabilities, label, probability, *columns in cur.fetchall():
            # Rows written without the full distribution (bulk loads) still carry their label.
            found.append((ItemForModel(*columns), probabilities or {label: probability}))
        return found
