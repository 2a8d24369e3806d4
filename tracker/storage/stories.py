"""Analysts' corrections to stories: merge one story into another, split items out into a new one.

Pairs reference items, not stories, so they follow the items; follow-subscriptions reference the
story and are moved (merge) or copied (split) here. Call inside a transaction, after lock()."""

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from tracker.storage import items


@dataclass(frozen=True)
class Merged:
    items: int
    subscriptions: int


def lock(conn: psycopg.Connection, story_ids: Sequence[int]) -> set[int]:
    """Hold the stories (and story assignment, as pairing does) until the transaction ends;
    returns the ids that exist."""
    items.lock_stories(conn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM stories WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (list(story_ids),),
        )
        return {int(row[0]) for row in cur.fetchall()}


def item_ids(conn: psycopg.Connection, story_id: int) -> set[int]:
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM items WHERE story_id = %s", (story_id,))
        return {int(row[0]) for row in cur.fetchall()}


def merge(conn: psycopg.Connection, target_id: int, source_id: int) -> Merged:
    """Move the source's items and followers to the target, then delete the source."""
    with conn.cursor() as cur:
        cur.execute("UPDATE items SET story_id = %s WHERE story_id = %s", (target_id, source_id))
        moved_items = cur.rowcount
        moved_subscriptions = _merge_followers(cur, target_id, source_id)
        cur.execute(
            """UPDATE stories t SET first_seen_at = least(t.first_seen_at, s.first_seen_at)
               FROM stories s WHERE t.id = %s AND s.id = %s""",
            (target_id, source_id),
        )
        cur.execute("DELETE FROM stories WHERE id = %s", (source_id,))
    return Merged(moved_items, moved_subscriptions)


# A source follower with the same rule as a target follower would break the unique rule index:
# it is folded into the target's row (held digest entries and an active state carried over).
_DUPLICATE_FOLLOWERS = """
SELECT s.id AS source_sub, t.id AS target_sub, s.unsubscribed_at AS source_unsubscribed
FROM alert_subscriptions s JOIN alert_subscriptions t
  ON t.story_id = %(target)s AND t.email = s.email AND t.kind = s.kind
 AND t.keywords = s.keywords AND t.tags = s.tags AND t.feed_kinds = s.feed_kinds
 AND t.languages = s.languages AND t.item_id IS NOT DISTINCT FROM s.item_id
WHERE s.story_id = %(source)s
"""


def _merge_followers(cur: psycopg.Cursor[tuple[object, ...]], target: int, source: int) -> int:
    params = {"target": target, "source": source}
    cur.execute(_DUPLICATE_FOLLOWERS, params)
    for source_sub, target_sub, source_unsubscribed in cur.fetchall():
        cur.execute(
            "UPDATE alert_outbox SET subscription_id = %s WHERE subscription_id = %s",
            (target_sub, source_sub),
        )
        if source_unsubscribed is None:
            cur.execute(
                "UPDATE alert_subscriptions SET unsubscribed_at = NULL WHERE id = %s",
                (target_sub,),
            )
        cur.execute("DELETE FROM alert_subscriptions WHERE id = %s", (source_sub,))
    cur.execute(
        "UPDATE alert_subscriptions SET story_id = %(target)s WHERE story_id = %(source)s",
        params,
    )
    return cur.rowcount


def split(conn: psycopg.Connection, story_id: int, moving: Sequence[int]) -> int:
    """Move `moving` (items of the story) to a new story named after the earliest of them;
    the story's followers follow the new one too. Returns the new story's id."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO stories (title, first_seen_at)
               SELECT title, coalesce(published_at, fetched_at) FROM items
               WHERE id = ANY(%s) ORDER BY coalesce(published_at, fetched_at), id LIMIT 1
               RETURNING id""",
            (list(moving),),
        )
        row = cur.fetchone()
        assert row is not None, "split needs at least one item"
        new_id = int(row[0])
        cur.execute(
            "UPDATE items SET story_id = %s WHERE story_id = %s AND id = ANY(%s)",
            (new_id, story_id, list(moving)),
        )
        cur.execute(
            """UPDATE stories SET first_seen_at = coalesce(
                   (SELECT min(coalesce(published_at, fetched_at)) FROM items
                    WHERE story_id = %(id)s), first_seen_at)
               WHERE id = %(id)s""",
            {"id": story_id},
        )
        cur.execute(
            """INSERT INTO alert_subscriptions
                   (user_id, email, kind, keywords, tags, feed_kinds, languages,
                    min_probability, delivery, digest_at, time_zone, story_id, item_id,
                    last_digest_at, unsubscribed_at)
               SELECT user_id, email, kind, keywords, tags, feed_kinds, languages,
                      min_probability, delivery, digest_at, time_zone, %s, item_id,
                      last_digest_at, unsubscribed_at
               FROM alert_subscriptions WHERE story_id = %s
               ON CONFLICT DO NOTHING""",
            (new_id, story_id),
        )
    return new_id
