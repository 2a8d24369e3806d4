"""Items' languages for the backfill (`tracker items detect-language`): read in id order, one
batch at a time, and written where they changed."""

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class ItemLanguage:
    id: int
    title: str
    summary: str
    language: str | None
    feed_language: str | None


def count(conn: psycopg.Connection, after_id: int = 0) -> int:
    row = conn.execute("SELECT count(*) FROM items WHERE id > %s", (after_id,)).fetchone()
    return int(row[0]) if row else 0


def batch(conn: psycopg.Connection, after_id: int, limit: int) -> list[ItemLanguage]:
    """The next `limit` items by id after `after_id` (keyset: each batch reads its own rows
    of the primary key, however far the backfill has come)."""
    with conn.cursor(row_factory=class_row(ItemLanguage)) as cur:
        cur.execute(
            """SELECT i.id, i.title, i.summary, i.language, f.language AS feed_language
               FROM items i JOIN feeds f ON f.id = i.feed_id
               WHERE i.id > %s ORDER BY i.id LIMIT %s""",
            (after_id, limit),
        )
        return cur.fetchall()


def set_languages(conn: psycopg.Connection, languages: Sequence[tuple[int, str | None]]) -> int:
    """Store each item's language where it differs; returns how many changed. The search
    column follows (it is generated) and so do the pairs' filter facets (a trigger, 0014)."""
    if not languages:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE items i SET language = n.language
               FROM unnest(%s::bigint[], %s::text[]) AS n(id, language)
               WHERE i.id = n.id AND i.language IS DISTINCT FROM n.language""",
            ([item_id for item_id, _ in languages], [code for _, code in languages]),
        )
        return cur.rowcount
