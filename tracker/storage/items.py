"""Items: idempotent upsert of parsed entries, and reads for the classifier and the matcher."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from tracker.domain import ParsedEntry


@dataclass(frozen=True)
class ItemForModel:
    id: int
    feed_id: int
    feed_kind: str
    title: str
    summary: str
    language: str | None
    seen_at: datetime
    story_id: int | None


ITEM_FOR_MODEL = """SELECT i.id, i.feed_id, f.kind AS feed_kind, i.title, i.summary,
        coalesce(i.language, f.language) AS language,
        coalesce(i.published_at, i.fetched_at) AS seen_at, i.story_id
    FROM items i JOIN feeds f ON f.id = i.feed_id"""


def upsert(conn: psycopg.Connection, feed_id: int, entries: Sequence[ParsedEntry]) -> list[int]:
    """Store entries; returns ids of items that are new or whose content changed."""
    changed: list[int] = []
    with conn.cursor() as cur:
        for e in entries:
            cur.execute(
                """INSERT INTO items (feed_id, dedupe_key, guid, url, title, summary, language,
                                      published_at, content_hash)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (feed_id, dedupe_key) DO UPDATE
                       SET title = EXCLUDED.title, summary = EXCLUDED.summary,
                           url = EXCLUDED.url, published_at = EXCLUDED.published_at,
                           content_hash = EXCLUDED.content_hash
                       WHERE items.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                   RETURNING id""",
                (
                    feed_id,
                    e.dedupe_key,
                    e.guid,
                    e.url,
                    e.title,
                    e.summary,
                    e.language,
                    e.published_at,
                    e.content_hash,
                ),
            )
            row = cur.fetchone()
            if row is not None:
                changed.append(row[0])
    return changed


def for_model(conn: psycopg.Connection, item_ids: Sequence[int]) -> list[ItemForModel]:
    with conn.cursor(row_factory=class_row(ItemForModel)) as cur:
        cur.execute(ITEM_FOR_MODEL + " WHERE i.id = ANY(%s) ORDER BY i.id", (list(item_ids),))
        return cur.fetchall()


def candidates(
    conn: psycopg.Connection,
    *,
    query_terms: Sequence[str],
    label: str,
    model_version: str,
    around: datetime,
    window_days: int,
    exclude_id: int,
    limit: int = 50,
) -> list[ItemForModel]:
    """Items with `label` under `model_version` that share terms with the query, by FTS rank."""
    if not query_terms:
        return []
    tsquery = " | ".join(query_terms)
    with conn.cursor(row_factory=class_row(ItemForModel)) as cur:
        cur.execute(
            ITEM_FOR_MODEL
            + """ JOIN classifications c ON c.item_id = i.id
                WHERE c.label = %(label)s AND c.model_version = %(version)s
                  AND i.id <> %(exclude)s
                  AND i.tsv @@ to_tsquery('simple', %(q)s)
                  AND coalesce(i.published_at, i.fetched_at)
                      BETWEEN %(around)s - make_interval(days => %(days)s)
                          AND %(around)s + make_interval(days => %(days)s)
                ORDER BY ts_rank_cd(i.tsv, to_tsquery('simple', %(q)s)) DESC, i.id DESC
                LIMIT %(limit)s""",
            {
                "label": label,
                "version": model_version,
                "exclude": exclude_id,
                "q": tsquery,
                "around": around,
                "days": window_days,
                "limit": limit,
            },
        )
        return cur.fetchall()


def lock_stories(conn: psycopg.Connection) -> None:
    """Serialise story assignment until the transaction ends, so two workers pairing
    near-duplicates at once do not create two stories for one rumour."""
    conn.execute("SELECT pg_advisory_xact_lock(7263116)")


def set_story(conn: psycopg.Connection, item_ids: Sequence[int], story_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE items SET story_id = %s WHERE id = ANY(%s)", (story_id, list(item_ids)))


def create_story(conn: psycopg.Connection, title: str, first_seen_at: datetime) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO stories (title, first_seen_at) VALUES (%s, %s) RETURNING id",
            (title, first_seen_at),
        )
        row = cur.fetchone()
        assert row is not None
        return int(row[0])
