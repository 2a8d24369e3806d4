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


UPSERT = """
WITH previous AS (
    SELECT id, revision, title, summary, content_hash FROM items
    WHERE feed_id = %(feed_id)s AND dedupe_key = %(key)s
      AND content_hash IS DISTINCT FROM %(hash)s
), kept AS (
    INSERT INTO item_revisions (item_id, revision, title, summary, content_hash)
    SELECT id, revision, title, summary, content_hash FROM previous
    ON CONFLICT (item_id, revision) DO NOTHING
)
INSERT INTO items (feed_id, dedupe_key, guid, url, title, summary, language, published_at,
                   content_hash, content_html, author, updated_at, categories, enclosures,
                   text_hash)
VALUES (%(feed_id)s, %(key)s, %(guid)s, %(url)s, %(title)s, %(summary)s, %(language)s,
        %(published)s, %(hash)s, %(html)s, %(author)s, %(updated)s, %(categories)s,
        %(enclosures)s, %(text_hash)s)
ON CONFLICT (feed_id, dedupe_key) DO UPDATE
    SET title = EXCLUDED.title, summary = EXCLUDED.summary, url = EXCLUDED.url,
        published_at = EXCLUDED.published_at, content_hash = EXCLUDED.content_hash,
        content_html = EXCLUDED.content_html, author = EXCLUDED.author,
        updated_at = EXCLUDED.updated_at, categories = EXCLUDED.categories,
        enclosures = EXCLUDED.enclosures, text_hash = EXCLUDED.text_hash,
        revision = items.revision + 1
    WHERE items.content_hash IS DISTINCT FROM EXCLUDED.content_hash
RETURNING id
"""


def upsert(conn: psycopg.Connection, feed_id: int, entries: Sequence[ParsedEntry]) -> list[int]:
    """Store entries; returns ids of items that are new or changed. A changed item keeps its
    id and its earlier text as a revision."""
    if not entries:
        return []
    # One entry per key: a feed that repeats a GUID would otherwise update its own row twice.
    unique = list({e.dedupe_key: e for e in entries}.values())
    changed: list[int] = []
    with conn.cursor() as cur:
        cur.executemany(UPSERT, [_params(feed_id, e) for e in unique], returning=True)
        while True:
            row = cur.fetchone()
            if row is not None:
                changed.append(row[0])
            if not cur.nextset():
                break
    return changed


def _params(feed_id: int, e: ParsedEntry) -> dict[str, object]:
    return {
        "feed_id": feed_id,
        "key": e.dedupe_key,
        "guid": e.guid,
        "url": e.url,
        "title": e.title,
        "summary": e.summary,
        "language": e.language,
        "published": e.published_at,
        "hash": e.content_hash,
        "html": e.content_html,
        "author": e.author,
        "updated": e.updated_at,
        "categories": list(e.categories),
        "enclosures": list(e.enclosures),
        "text_hash": e.text_hash,
    }


def link_duplicates(conn: psycopg.Connection, item_ids: Sequence[int]) -> int:
    """Point each new item at the first earlier item from another feed with the same canonical
    URL or the same text, so one article carried by ten outlets counts once."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE items n SET duplicate_of = (
                   SELECT coalesce(o.duplicate_of, o.id) FROM items o
                   WHERE o.feed_id <> n.feed_id AND o.id < n.id
                     AND ((n.url IS NOT NULL AND o.url = n.url)
                          OR (n.text_hash IS NOT NULL AND o.text_hash = n.text_hash))
                   ORDER BY o.id LIMIT 1)
               WHERE n.id = ANY(%s) AND n.duplicate_of IS NULL""",
            (list(item_ids),),
        )
        cur.execute(
            "SELECT count(*) FROM items WHERE id = ANY(%s) AND duplicate_of IS NOT NULL",
            (list(item_ids),),
        )
        row = cur.fetchone()
        return int(row[0]) if row else 0


def published_dates(conn: psycopg.Connection, feed_id: int, limit: int = 10) -> list[datetime]:
    with conn.cursor() as cur:
        cur.execute(
            """SELECT published_at FROM items WHERE feed_id = %s AND published_at IS NOT NULL
               ORDER BY published_at DESC LIMIT %s""",
            (feed_id, limit),
        )
        return [row[0] for row in cur.fetchall()]


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


def copy_in(conn: psycopg.Connection, rows: Sequence[tuple[int, ParsedEntry]]) -> int:
    """Bulk-load archived entries with COPY; existing (feed, key) pairs are left alone.
    Returns how many items were new. Call inside a transaction."""
    with conn.cursor() as cur:
        cur.execute(
            """CREATE TEMP TABLE IF NOT EXISTS import_items (
                   feed_id bigint, dedupe_key text, guid text, url text, title text,
                   summary text, language text, published_at timestamptz, content_hash text,
                   text_hash text) ON COMMIT DELETE ROWS"""
        )
        with cur.copy(
            """COPY import_items (feed_id, dedupe_key, guid, url, title, summary, language,
                                  published_at, content_hash, text_hash) FROM STDIN"""
        ) as copy:
            for feed_id, e in rows:
                copy.write_row(
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
                        e.text_hash,
                    )
                )
        cur.execute(
            """INSERT INTO items (feed_id, dedupe_key, guid, url, title, summary, language,
                                  published_at, content_hash, text_hash)
               SELECT DISTINCT ON (feed_id, dedupe_key) feed_id, dedupe_key, guid, url, title,
                      summary, language, published_at, content_hash, text_hash
               FROM import_items ORDER BY feed_id, dedupe_key
               ON CONFLICT (feed_id, dedupe_key) DO NOTHING"""
        )
        return cur.rowcount
