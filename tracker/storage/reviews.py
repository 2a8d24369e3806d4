"""The analysts' review queue: ranked, filtered pairs, claims, decisions, undo, saved views."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row

from tracker.storage import outbox

CLAIM_LEASE = timedelta(minutes=10)
DECIDED_STATUS = {"confirm": "confirmed", "reject": "rejected"}
Refusal = Literal["missing", "claimed", "decided"]
Outcome = Literal["ok", "missing", "claimed", "decided"]


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to; None means no restriction."""

    status: str | None = "suggested"
    language: str | None = None
    feed_kind: str | None = None
    tag: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class QueuePair:
    id: int
    score: float
    status: str
    created_at: datetime
    explanation: dict[str, Any]
    rumour_id: int
    rumour_title: str
    rumour_summary: str
    rumour_url: str | None
    rumour_feed: str
    rumour_kind: str
    rumour_language: str | None
    rumour_seen_at: datetime
    clarification_id: int
    clarification_title: str
    clarification_summary: str
    clarification_url: str | None
    clarification_feed: str
    clarification_kind: str
    clarification_language: str | None
    clarification_seen_at: datetime
    story_id: int | None
    story_outlets: int
    story_first_seen: datetime | None
    claimed_by: int | None
    claimed_by_email: str | None
    claimed_until: datetime | None
    skipped_by_me: bool


@dataclass(frozen=True)
class Undone:
    """What undo took back: a pair decision (with the confirmation's alerts withdrawn and
    those already sent), or a relabel (with the label that stands for the item now)."""

    pair_id: int | None
    decision: str  # confirm, reject, skip, or relabel
    item_id: int | None = None
    label: str | None = None
    label_now: str | None = None
    alerts_withdrawn: int = 0
    alerts_sent: int = 0


@dataclass(frozen=True)
class SavedView:
    id: int
    name: str
    query: str


# Language, feed kind and tag match when either side of the pair has them: they are the
# pair's facets (migration 0014), so no filter joins the items or feeds.
FILTERED = """
FROM pairs p
WHERE (%(status)s::text IS NULL OR p.status = %(status)s)
  AND p.facets @> %(facets)s::text[]
  AND (%(score_min)s::real IS NULL OR p.score >= %(score_min)s)
  AND (%(score_max)s::real IS NULL OR p.score <= %(score_max)s)
  AND (%(date_from)s::date IS NULL OR p.created_at >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR p.created_at < %(date_to)s::date + 1)
"""


def facets(language: str | None, feed_kind: str | None, tag: str | None) -> list[str]:
    """The facets a pair must all have (pairs.facets) for these filters."""
    wanted = [("lang", language), ("kind", feed_kind), ("tag", tag)]
    return [f"{name}:{value}" for name, value in wanted if value is not None]


# Two steps so the rank index does the work: first the best `pick` pairs by score (the page's
# limit plus as many as this analyst skipped and others hold, since those sort after the rest),
# and the pair this analyst holds; then only those few are joined, measured and ordered.
QUEUE_SQL = (
    """
WITH picked AS (
  (SELECT p.id"""
    + FILTERED
    + """
   ORDER BY p.score DESC, p.created_at DESC, p.id DESC
   LIMIT %(pick)s)
  UNION
  (SELECT p.id"""
    + FILTERED
    + """
     AND p.claimed_by = %(me)s AND p.claimed_until > %(now)s))
SELECT p.id, p.score, p.status, p.created_at, p.explanation,
       r.id AS rumour_id, r.title AS rumour_title, r.summary AS rumour_summary,
       r.url AS rumour_url, coalesce(rf.title, rf.host) AS rumour_feed, rf.kind AS rumour_kind,
       r.language AS rumour_language,
       coalesce(r.published_at, r.fetched_at) AS rumour_seen_at,
       c.id AS clarification_id, c.title AS clarification_title,
       c.summary AS clarification_summary, c.url AS clarification_url,
       coalesce(cf.title, cf.host) AS clarification_feed, cf.kind AS clarification_kind,
       c.language AS clarification_language,
       coalesce(c.published_at, c.fetched_at) AS clarification_seen_at,
       r.story_id, coalesce(spread.outlets, 0) AS story_outlets,
       spread.first_seen AS story_first_seen,
       CASE WHEN p.claimed_until > %(now)s THEN p.claimed_by END AS claimed_by,
       CASE WHEN p.claimed_until > %(now)s THEN u.email END AS claimed_by_email,
       CASE WHEN p.claimed_until > %(now)s THEN p.claimed_until END AS claimed_until,
       EXISTS (SELECT 1 FROM reviews s WHERE s.pair_id = p.id AND s.user_id = %(me)s
               AND s.decision = 'skip' AND s.undone_at IS NULL) AS skipped_by_me
FROM picked JOIN pairs p ON p.id = picked.id
JOIN items r ON r.id = p.rumour_id JOIN feeds rf ON rf.id = r.feed_id
JOIN items c ON c.id = p.clarification_id JOIN feeds cf ON cf.id = c.feed_id
LEFT JOIN users u ON u.id = p.claimed_by
LEFT JOIN LATERAL (
    SELECT count(DISTINCT s.feed_id)::int AS outlets,
           min(coalesce(s.published_at, s.fetched_at)) AS first_seen
    FROM items s WHERE s.story_id = r.story_id) spread ON r.story_id IS NOT NULL
ORDER BY
  -- The pair this analyst holds comes first, pairs others hold last, skipped ones before those.
  -- coalesce: an unclaimed pair's comparisons are NULL, which would sort apart from false.
  coalesce(p.claimed_by = %(me)s AND p.claimed_until > %(now)s, false) DESC,
  coalesce(p.claimed_by <> %(me)s AND p.claimed_until > %(now)s, false) ASC,
  skipped_by_me ASC,
  p.score DESC, p.created_at DESC, p.id DESC
LIMIT %(limit)s
"""
)


def queue(
    conn: psycopg.Connection, user_id: int, now: datetime, where: QueueFilter, limit: int = 50
) -> list[QueuePair]:
    """Pairs best score first, newest first among equals, as `user_id` should work them."""
    params = {
        "me": user_id,
        "now": now,
        "status": where.status,
        "facets": facets(where.language, where.feed_kind, where.tag),
        "score_min": where.score_min,
        "score_max": where.score_max,
        "date_from": where.date_from,
        "date_to": where.date_to,
        "limit": limit,
    }
    # A number, not a subquery, in LIMIT: the planner then walks the rank index for a few rows.
    params["pick"] = limit + _sorted_last(conn, user_id, now)
    with conn.cursor(row_factory=class_row(QueuePair)) as cur:
        # Never prepared: a generic plan for these optional filters walks the wrong index.
        cur.execute(QUEUE_SQL, params, prepare=False)
        return cur.fetchall()


def _sorted_last(conn: psycopg.Connection, user_id: int, now: datetime) -> int:
    """How many pairs may sort after better-scored ones: skipped by this analyst, held by others."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT (SELECT count(*) FROM reviews WHERE user_id = %(me)s AND decision = 'skip'
                       AND undone_at IS NULL)
                    + (SELECT count(*) FROM pairs WHERE claimed_by IS NOT NULL
                       AND claimed_by <> %(me)s AND claimed_until > %(now)s)""",
            {"me": user_id, "now": now},
        )
        row = cur.fetchone()
    return int(row[0]) if row else 0


def claim(conn: psycopg.Connection, pair_id: int, user_id: int, now: datetime) -> bool:
    """Take (or renew) the lease on a suggested pair; False when someone else holds it.

    The conditional UPDATE is the lock: of two analysts racing, only one matches the row."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE pairs SET claimed_by = %(me)s, claimed_until = %(until)s
               WHERE id = %(id)s AND status = 'suggested'
                 AND (claimed_by IS NULL OR claimed_by = %(me)s OR claimed_until <= %(now)s)""",
            {"me": user_id, "until": now + CLAIM_LEASE, "id": pair_id, "now": now},
        )
        taken = cur.rowcount == 1
        if taken:
            # One pair at a time: whatever else this analyst held is free again.
            cur.execute(
                "UPDATE pairs SET claimed_by = NULL, claimed_until = NULL "
                "WHERE claimed_by = %s AND id <> %s",
                (user_id, pair_id),
            )
    return taken


# A pair confirmed by its score alone that no analyst has checked since (SQL, on alias p).
UNREVIEWED = "NOT EXISTS (SELECT 1 FROM reviews v WHERE v.pair_id = p.id AND v.undone_at IS NULL)"


def refusal(conn: psycopg.Connection, pair_id: int) -> Refusal:
    """Why a claim or decision on this pair did not match: gone, decided, or held."""
    with conn.cursor() as cur:
        cur.execute("SELECT status FROM pairs WHERE id = %s", (pair_id,))
        row = cur.fetchone()
    if row is None:
        return "missing"
    return "decided" if row[0] != "suggested" else "claimed"


@dataclass(frozen=True)
class Decided:
    outcome: Outcome
    # The pair's status before the decision, when it was taken: confirming a suggested pair is
    # news to the story's followers; an automatic confirmation was news when it was made.
    previous_status: str | None = None


def decide(
    conn: psycopg.Connection,
    pair_id: int,
    user_id: int | None,
    decision: str,
    reason: str | None,
    now: datetime,
) -> Decided:
    """Confirm, reject or skip a suggested pair that nobody else holds; or check a pair that was
    confirmed automatically and nobody has reviewed (confirm it, or reject it). The caller's
    transaction also holds the audit row and any alerts."""
    new_status = DECIDED_STATUS.get(decision, "suggested")
    with conn.cursor() as cur:
        cur.execute(
            f"""WITH before AS (SELECT id, status FROM pairs WHERE id = %(id)s FOR UPDATE)
                UPDATE pairs p SET status = %(status)s, claimed_by = NULL, claimed_until = NULL,
                       updated_at = now()
                FROM before
                WHERE p.id = before.id
                  AND (p.status = 'suggested'
                       OR (p.status = 'confirmed' AND %(decision)s <> 'skip' AND {UNREVIEWED}))
                  AND (p.claimed_by IS NULL OR p.claimed_by = %(me)s
                       OR p.claimed_until <= %(now)s)
                RETURNING before.status""",
            {"status": new_status, "id": pair_id, "me": user_id, "now": now, "decision": decision},
        )
        row = cur.fetchone()
        if row is None:
            return Decided(refusal(conn, pair_id))
        cur.execute(
            """INSERT INTO reviews (pair_id, user_id, decision, reason, previous_status)
               VALUES (%s, %s, %s, %s, %s)""",
            (pair_id, user_id, decision, reason, row[0]),
        )
    return Decided("ok", row[0])


@dataclass(frozen=True)
class Decision:
    """One analyst's decision on a pair, as the pair page lists it."""

    decision: str
    reason: str | None
    by: str | None  # the analyst's email; None for a deleted account
    created_at: datetime
    undone_at: datetime | None


def history(conn: psycopg.Connection, pair_id: int) -> list[Decision]:
    """Every decision on the pair, undone ones too, oldest first."""
    with conn.cursor(row_factory=class_row(Decision)) as cur:
        cur.execute(
            """SELECT v.decision, v.reason, u.email AS by, v.created_at, v.undone_at
               FROM reviews v LEFT JOIN users u ON u.id = v.user_id
               WHERE v.pair_id = %s ORDER BY v.created_at, v.id""",
            (pair_id,),
        )
        return cur.fetchall()


def undo_last(conn: psycopg.Connection, user_id: int) -> Undone | None:
    """Take back this analyst's latest action still standing, a pair decision or a relabel;
    None when there is none, or when the pair has since changed (someone else decided it
    again), which is left alone. Call in a transaction: undoing a confirmation withdraws the
    alerts it queued that are not sent yet, in the same one."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT id, pair_id, decision, previous_status, created_at FROM reviews
               WHERE user_id = %s AND undone_at IS NULL AND previous_status IS NOT NULL
               ORDER BY id DESC LIMIT 1 FOR UPDATE""",
            (user_id,),
        )
        review = cur.fetchone()
        cur.execute(
            """SELECT id, item_id, label, created_at FROM item_labels
               WHERE user_id = %s AND undone_at IS NULL ORDER BY id DESC LIMIT 1 FOR UPDATE""",
            (user_id,),
        )
        relabel = cur.fetchone()
    if relabel is not None and (review is None or relabel[3] >= review[4]):
        return _undo_relabel(conn, int(relabel[0]), int(relabel[1]), str(relabel[2]))
    if review is None:
        return None
    return _undo_review(conn, int(review[0]), int(review[1]), str(review[2]), str(review[3]))


def _undo_review(
    conn: psycopg.Connection, review_id: int, pair_id: int, decision: str, previous: str
) -> Undone | None:
    with conn.cursor() as cur:
        if decision in DECIDED_STATUS:
            cur.execute(
                """UPDATE pairs SET status = %s, updated_at = now()
                   WHERE id = %s AND status = %s""",
                (previous, pair_id, DECIDED_STATUS[decision]),
            )
            if cur.rowcount != 1:
                return None
        cur.execute("UPDATE reviews SET undone_at = now() WHERE id = %s", (review_id,))
    # Undoing the check of an automatic confirmation leaves that confirmation's alerts be.
    if decision != "confirm" or previous != "suggested":
        return Undone(pair_id, decision)
    withdrawn = outbox.withdraw_confirmation(conn, pair_id)
    return Undone(
        pair_id, decision, alerts_withdrawn=withdrawn.cancelled, alerts_sent=withdrawn.sent
    )


def _undo_relabel(conn: psycopg.Connection, label_id: int, item_id: int, label: str) -> Undone:
    """The label is set aside, so whatever stood before it (an earlier label, or none) holds."""
    with conn.cursor() as cur:
        cur.execute("UPDATE item_labels SET undone_at = now() WHERE id = %s", (label_id,))
        cur.execute(
            """SELECT label FROM item_labels WHERE item_id = %s AND undone_at IS NULL
               ORDER BY created_at DESC, id DESC LIMIT 1""",
            (item_id,),
        )
        row = cur.fetchone()
    return Undone(None, "relabel", item_id, label, str(row[0]) if row else None)


def item_exists(conn: psycopg.Connection, item_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM items WHERE id = %s", (item_id,))
        return cur.fetchone() is not None


def saved_views(conn: psycopg.Connection, user_id: int) -> list[SavedView]:
    with conn.cursor(row_factory=class_row(SavedView)) as cur:
        cur.execute(
            "SELECT id, name, query FROM saved_views WHERE user_id = %s ORDER BY name",
            (user_id,),
        )
        return cur.fetchall()


def save_view(conn: psycopg.Connection, user_id: int, name: str, query: str) -> int:
    """Store a named query string for this user; the same name replaces the old one."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO saved_views (user_id, name, query) VALUES (%s, %s, %s)
               ON CONFLICT (user_id, name) DO UPDATE SET query = EXCLUDED.query
               RETURNING id""",
            (user_id, name, query),
        )
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def delete_view(conn: psycopg.Connection, user_id: int, view_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM saved_views WHERE id = %s AND user_id = %s", (view_id, user_id))
        return cur.rowcount == 1
