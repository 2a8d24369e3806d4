"""Retention's SQL: which old items are kept and why, and deleting the rest in batches.

An item is expired once it was fetched before the cutoff. It is kept all the same while any of
these holds (KEPT): its feed is a fact-checker's or an official one (the fact-check archive),
it is in a story, it is in a suggested or confirmed pair, or in any pair with a review (review
decisions are kept by their own setting), an analyst labelled it, or a subscription follows it.
Deleting an item deletes its classifications, revisions and rejected unreviewed pairs with it
(foreign keys, ON DELETE CASCADE).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

# The reasons in the order `tracker prune --dry-run` lists them; each a condition on the
# expired item `s` and its feed `f`.
KEEP_REASONS: dict[str, str] = {
    "fact-check archive": "f.kind IN ('factcheck', 'official')",
    "in a story": "s.story_id IS NOT NULL",
    "in a pair": """EXISTS (
        SELECT 1 FROM pairs p WHERE (p.rumour_id = s.id OR p.clarification_id = s.id)
        AND (p.status <> 'rejected' OR EXISTS (SELECT 1 FROM reviews r WHERE r.pair_id = p.id)))""",
    "labelled": "EXISTS (SELECT 1 FROM item_labels l WHERE l.item_id = s.id)",
    "followed": "EXISTS (SELECT 1 FROM alert_subscriptions a WHERE a.item_id = s.id)",
}
KEPT = " OR ".join(f"({condition})" for condition in KEEP_REASONS.values())
# Where a batch starts before the first one: before any item was fetched.
START = (datetime(1970, 1, 1, tzinfo=UTC), 0)


@dataclass(frozen=True)
class Expired:
    """Items fetched before the cutoff: how many, how many each reason keeps (an item can have
    more than one), and how many would go."""

    expired: int
    kept: dict[str, int]
    doomed: int


@dataclass(frozen=True)
class Batch:
    scanned: int
    deleted: int
    # The last item scanned, (fetched_at, id): the next batch starts after it, so kept items
    # are read once per pass, not once per batch.
    last: tuple[datetime, int]


def expired(conn: psycopg.Connection, cutoff: datetime) -> Expired:
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in KEEP_REASONS.values())
    row = conn.execute(
        f"""SELECT count(*), {counts}, count(*) FILTER (WHERE NOT ({KEPT}))
            FROM items s JOIN feeds f ON f.id = s.feed_id
            WHERE s.fetched_at < %s""",
        (cutoff,),
    ).fetchone()
    assert row is not None
    kept = dict(zip(KEEP_REASONS, (int(n) for n in row[1:-1]), strict=True))
    return Expired(expired=int(row[0]), kept=kept, doomed=int(row[-1]))


def delete_batch(
    conn: psycopg.Connection, cutoff: datetime, after: tuple[datetime, int], limit: int
) -> Batch:
    """Delete the expired items not kept among the next `limit` expired ones after `after`,
    oldest first, in one transaction."""
    row = conn.execute(
        f"""WITH scanned AS (
                SELECT s.id, s.fetched_at, s.feed_id, s.story_id FROM items s
                WHERE s.fetched_at < %(cutoff)s AND (s.fetched_at, s.id) > (%(at)s, %(id)s)
                ORDER BY s.fetched_at, s.id LIMIT %(limit)s
            ), gone AS (
                DELETE FROM items d USING scanned s JOIN feeds f ON f.id = s.feed_id
                WHERE d.id = s.id AND NOT ({KEPT})
                RETURNING d.id
            )
            SELECT (SELECT count(*) FROM scanned), (SELECT count(*) FROM gone), last.fetched_at,
                   last.id
            FROM (SELECT fetched_at, id FROM scanned ORDER BY fetched_at DESC, id DESC LIMIT 1)
                 AS last""",
        {"cutoff": cutoff, "at": after[0], "id": after[1], "limit": limit},
    ).fetchone()
    if row is None:
        return Batch(scanned=0, deleted=0, last=after)
    return Batch(scanned=int(row[0]), deleted=int(row[1]), last=(row[2], int(row[3])))


def delete_decisions(conn: psycopg.Connection, cutoff: datetime) -> tuple[int, int]:
    """Delete review decisions and audit rows older than the cutoff: (reviews, audit rows)."""
    reviews = conn.execute("DELETE FROM reviews WHERE created_at < %s", (cutoff,)).rowcount
    audit = conn.execute("DELETE FROM audit_log WHERE created_at < %s", (cutoff,)).rowcount
    return reviews, audit


def count_decisions(conn: psycopg.Connection, cutoff: datetime) -> tuple[int, int]:
    """What delete_decisions would delete: (reviews, audit rows)."""
    row = conn.execute(
        """SELECT (SELECT count(*) FROM reviews WHERE created_at < %(cutoff)s),
                  (SELECT count(*) FROM audit_log WHERE created_at < %(cutoff)s)""",
        {"cutoff": cutoff},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
