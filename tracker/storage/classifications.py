"""Classifications: one row per (item, model version), written once."""

from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from tracker.domain import Prediction


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
