"""Classifications: one row per (item, model version), written once."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from tracker.domain import Prediction
from tracker.storage.items import ITEM_FOR_MODEL, ItemForModel


def insert(
    conn: psycopg.Connection,
    model_version: str,
    predictions: Sequence[tuple[int, Prediction, str | None]],
) -> list[int]:
    """Store predictions, and copy the items with a pairing role (rumour or clarification,
    domain.pairing_role) into the table pairing searches (0016, 0017); returns the item ids
    classified now (not by an earlier delivery)."""
    stored: list[int] = []
    with conn.cursor() as cur:
        for item_id, p, _ in predictions:
            cur.execute(
                """INSERT INTO classifications (item_id, model_version, label, probability,
                                                probabilities)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (item_id, model_version) DO NOTHING RETURNING item_id""",
                (item_id, model_version, p.label, p.probability, Jsonb(p.probabilities)),
            )
            if cur.fetchone() is not None:
                stored.append(item_id)
    new = set(stored)
    roles = {i: role for i, _, role in predictions if i in new and role is not None}
    add_pairing_candidates(conn, model_version, roles)
    return stored


def add_pairing_candidates(
    conn: psycopg.Connection, model_version: str, roles: Mapping[int, str]
) -> None:
    """Copy items classified by this version into the table pairing searches, each with its
    role, feed kind, time and terms."""
    if not roles:
        return
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO pairing_candidates (item_id, model_version, label, kind, seen_at, tsv)
               SELECT c.item_id, c.model_version, r.role, f.kind,
                      coalesce(i.published_at, i.fetched_at), item_terms(i.title, i.summary)
               FROM unnest(%s::bigint[], %s::text[]) AS r(item_id, role)
               JOIN classifications c ON c.item_id = r.item_id AND c.model_version = %s
               JOIN items i ON i.id = c.item_id
               JOIN feeds f ON f.id = i.feed_id
               ON CONFLICT DO NOTHING""",
            (list(roles), list(roles.values()), model_version),
        )


def roles(
    conn: psycopg.Connection, model_version: str, item_ids: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """The pairing role and the label of each of the items that has a role."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT p.item_id, p.label, c.label FROM pairing_candidates p
               JOIN classifications c USING (item_id, model_version)
               WHERE p.model_version = %s AND p.item_id = ANY(%s)""",
            (model_version, list(item_ids)),
        )
        return {row[0]: (row[1], row[2]) for row in cur.fetchall()}


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
