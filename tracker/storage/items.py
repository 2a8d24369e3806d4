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
    author: str | None
    # The sentence vector stored at classification (0018), if the item has a pairing role.
    embedding: list[float] | None = None


# The item's vector, or else its first copy's when the copy has the same words (dedupe's
# text_hash): a rumour repeated by a dozen outlets is embedded once, not a dozen times.
# Read through binary cursors: as text, 20 rows' vectors took 4.1 ms to send and parse, against
# 1.6 ms in binary, and pairing reads over a hundred candidates per item.
ITEM_FOR_MODEL = """SELECT i.id, i.feed_id, f.kind AS feed_kind, i.title, i.summary,
        coalesce(i.language, f.language) AS language,
        coalesce(i.published_at, i.fetched_at) AS seen_at, i.story_id, i.author,
        coalesce(
            (SELECT v.embedding::real[] FROM pairing_candidates v
             WHERE v.item_id = i.id AND v.embedding IS NOT NULL LIMIT 1),
            (SELECT v.embedding::real[] FROM items o
             JOIN pairing_candidates v ON v.item_id = o.id
             WHERE o.id = i.duplicate_of AND o.text_hash = i.text_hash
               AND v.embedding IS NOT NULL LIMIT 1)) AS embedding
    FROM items i JOIN feeds f ON f.id = i.feed_id"""


COLUMNS = (
    "dedupe_key",
    "guid",
    "url",
    "title",
    "summary",
    "language",
    "published_at",
    "content_hash",
    "content_html",
    "author",
    "updated_at",
    "categories",
    "enclosures",
    "text_hash",
)
# unnest() cannot take arrays of arrays of varying length: list columns travel joined by
# the unit separator and are split again in SQL. The arrays travel in binary (%b): as text
# literals they cost the worker and the server several times more to quote and parse.
ROWS = """unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                 %b::timestamptz[], %b::text[], %b::text[], %b::text[], %b::timestamptz[],
                 %b::text[], %b::text[], %b::text[])
          AS e(dedupe_key, guid, url, title, summary, language, published_at, content_hash,
               content_html, author, updated_at, categories, enclosures, text_hash)"""
# The first earlier item of another feed with the same canonical URL or the same text, as the
# item to point at (its own original, if it is a copy too). Looked up while inserting, on the
# url and text_hash indexes, so a duplicate is written once, not written and then updated.
FIRST_COPY = """LEFT JOIN LATERAL (
                SELECT coalesce(o.duplicate_of, o.id) AS id FROM items o
                WHERE o.id = least(
                    (SELECT min(u.id) FROM items u WHERE u.url = e.url AND u.feed_id <> %s),
                    (SELECT min(t.id) FROM items t
                     WHERE t.text_hash = e.text_hash AND t.feed_id <> %s))) d ON true"""
SPLIT = "coalesce(string_to_array(nullif(e.{0}, ''), chr(31)), '{{}}')"


def upsert(
    conn: psycopg.Connection,
    feed_id: int,
    entries: Sequence[ParsedEntry],
    *,
    link_copies: bool = False,
) -> list[int]:
    """Store entries; returns ids of items that are new or changed. A changed item keeps its
    id and its earlier text as a revision. With `link_copies`, each such item is pointed
    at the first earlier copy in another feed (see `link_duplicates`). Call inside a
    transaction."""
    # One entry per key: a feed that repeats a GUID would otherwise update its own row twice.
    unique = list({e.dedupe_key: e for e in entries}.values())
    if not unique:
        return []
    stored = _stored_hashes(conn, feed_id, [e.dedupe_key for e in unique])
    new = [e for e in unique if e.dedupe_key not in stored]
    changed = [
        e for e in unique if e.dedupe_key in stored and stored[e.dedupe_key] != e.content_hash
    ]
    inserted = _insert(conn, feed_id, new, link_copies)
    updated = _update(conn, feed_id, changed)
    if updated and link_copies:
        link_duplicates(conn, updated)
    return inserted + updated


def _stored_hashes(conn: psycopg.Connection, feed_id: int, keys: list[str]) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute(
            """SELECT dedupe_key, content_hash FROM items
               WHERE feed_id = %s AND dedupe_key = ANY(%b::text[])""",
            (feed_id, keys),
        )
        return {row[0]: row[1] for row in cur.fetchall()}


def _arrays(entries: Sequence[ParsedEntry]) -> list[list[object]]:
    sep = "\x1f"
    return [
        [e.dedupe_key for e in entries],
        [e.guid for e in entries],
        [e.url for e in entries],
        [e.title for e in entries],
        [e.summary for e in entries],
        [e.language for e in entries],
        [e.published_at for e in entries],
        [e.content_hash for e in entries],
        [e.content_html for e in entries],
        [e.author for e in entries],
        [e.updated_at for e in entries],
        [sep.join(e.categories) for e in entries],
        [sep.join(e.enclosures) for e in entries],
        [e.text_hash for e in entries],
    ]


def _insert(
    conn: psycopg.Connection, feed_id: int, entries: Sequence[ParsedEntry], link_copies: bool
) -> list[int]:
    if not entries:
        return []
    copies = (FIRST_COPY, [feed_id, feed_id]) if link_copies else ("", [])
    with conn.cursor() as cur:
        cur.execute(
            f"""INSERT INTO items (feed_id, {", ".join(COLUMNS)}, duplicate_of)
                SELECT %s, e.dedupe_key, e.guid, e.url, e.title, e.summary, e.language,
                       e.published_at, e.content_hash, e.content_html, e.author, e.updated_at,
                       {SPLIT.format("categories")}, {SPLIT.format("enclosures")}, e.text_hash,
                       {"d.id" if link_copies else "NULL::bigint"}
                FROM {ROWS} {copies[0]}
                ON CONFLICT (feed_id, dedupe_key) DO NOTHING RETURNING id""",
            [feed_id, *_arrays(entries), *copies[1]],
        )
        return [row[0] for row in cur.fetchall()]


def _update(conn: psycopg.Connection, feed_id: int, entries: Sequence[ParsedEntry]) -> list[int]:
    if not entries:
        return []
    keys = [e.dedupe_key for e in entries]
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO item_revisions (item_id, revision, title, summary, content_hash)
               SELECT id, revision, title, summary, content_hash FROM items
               WHERE feed_id = %s AND dedupe_key = ANY(%s)
               ON CONFLICT (item_id, revision) DO NOTHING""",
            (feed_id, keys),
        )
        cur.execute(
            f"""UPDATE items i SET title = e.title, summary = e.summary, url = e.url,
                    published_at = e.published_at, content_hash = e.content_hash,
                    content_html = e.content_html, author = e.author,
                    updated_at = e.updated_at, categories = {SPLIT.format("categories")},
                    enclosures = {SPLIT.format("enclosures")}, text_hash = e.text_hash,
                    language = e.language, revision = i.revision + 1
                FROM {ROWS}
                WHERE i.feed_id = %s AND i.dedupe_key = e.dedupe_key
                  AND i.content_hash IS DISTINCT FROM e.content_hash
                RETURNING i.id""",
            [*_arrays(entries), feed_id],
        )
        updated = [row[0] for row in cur.fetchall()]
        if not updated:
            return []
        # Pairing searches its own copy of the terms (0016): it must find the new text. The
        # old text's vector would mislead; without one, pairing embeds the item as a query.
        cur.execute(
            """UPDATE pairing_candidates p
               SET tsv = item_terms(i.title, i.summary),
                   seen_at = coalesce(i.published_at, i.fetched_at), embedding = NULL
               FROM items i WHERE i.id = p.item_id AND i.id = ANY(%s)""",
            (updated,),
        )
        return updated


def link_duplicates(conn: psycopg.Connection, item_ids: Sequence[int]) -> int:
    """Point each new item at the first earlier item from another feed with the same canonical
    URL or the same text, so one article carried by ten outlets counts once. Returns how many
    were linked."""
    with conn.cursor() as cur:
        # Set-based joins on the url and text_hash indexes; a per-row OR would scan the table.
        cur.execute(
            """WITH new AS (SELECT id, feed_id, url, text_hash FROM items
                            WHERE id = ANY(%s) AND duplicate_of IS NULL),
                    earlier AS (
                        SELECT n.id, o.id AS first FROM new n JOIN items o
                          ON o.url = n.url AND o.feed_id <> n.feed_id AND o.id < n.id
                        UNION ALL
                        SELECT n.id, o.id FROM new n JOIN items o
                          ON o.text_hash = n.text_hash AND o.feed_id <> n.feed_id
                             AND o.id < n.id),
                    found AS (SELECT id, min(first) AS first FROM earlier GROUP BY id)
               UPDATE items n SET duplicate_of = coalesce(o.duplicate_of, o.id)
               FROM found JOIN items o ON o.id = found.first
               WHERE n.id = found.id""",
            (list(item_ids),),
        )
        return cur.rowcount


def published_dates(conn: psycopg.Connection, feed_id: int, limit: int = 10) -> list[datetime]:
    with conn.cursor() as cur:
        cur.execute(
            """SELECT published_at FROM items WHERE feed_id = %s AND published_at IS NOT NULL
               ORDER BY published_at DESC LIMIT %s""",
            (feed_id, limit),
        )
        return [row[0] for row in cur.fetchall()]


def for_model(conn: psycopg.Connection, item_ids: Sequence[int]) -> list[ItemForModel]:
    with conn.cursor(row_factory=class_row(ItemForModel), binary=True) as cur:
        cur.execute(ITEM_FOR_MODEL + " WHERE i.id = ANY(%s) ORDER BY i.id", (list(item_ids),))
        return cur.fetchall()


def lock_stories(conn: psycopg.Connection) -> None:
    """Serialise story assignment until the transaction ends, so two workers pairing
    near-duplicates at once do not create two stories for one rumour. Pairing takes it before
    its first write of a batch (pairing._store): taken after a pair was written, it closed
    deadlocks with a batch holding it and writing that pair."""
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


def unclassified(
    conn: psycopg.Connection,
    model_version: str,
    active_since: datetime,
    grace_s: float,
    lookback_s: float,
    limit: int,
) -> list[int]:
    """Items fetched longer than `grace_s` ago that classification never saw: not classified by
    the active model, if fetched after it became active, or by any model, if before."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT i.id FROM items i
               WHERE i.fetched_at < now() - make_interval(secs => %(grace)s)
                 AND i.fetched_at > now() - make_interval(secs => %(lookback)s)
                 AND NOT EXISTS (SELECT 1 FROM classifications c WHERE c.item_id = i.id
                                 AND (c.model_version = %(version)s
                                      OR i.fetched_at < %(since)s))
               ORDER BY i.fetched_at LIMIT %(limit)s""",
            {
                "grace": grace_s,
                "lookback": lookback_s,
                "version": model_version,
                "since": active_since,
                "limit": limit,
            },
        )
        return [row[0] for row in cur.fetchall()]
