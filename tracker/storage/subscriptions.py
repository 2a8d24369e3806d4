"""Alert subscriptions: rumour rules, followed stories and ops alerts, per email address."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time

import psycopg
from psycopg.rows import class_row

from tracker.storage import users

COLUMNS = """id, user_id, email, kind, keywords, tags, feed_kinds, languages, min_probability,
    delivery, digest_at, time_zone, story_id, item_id, last_digest_at, unsubscribed_at,
    created_at, generation"""


@dataclass(frozen=True)
class Rule:
    """What a subscription asks for; empty filters match everything."""

    email: str
    kind: str = "rumours"  # rumours | story | ops
    keywords: Sequence[str] = ()
    tags: Sequence[str] = ()
    feed_kinds: Sequence[str] = ()
    languages: Sequence[str] = ()
    min_probability: float = 0.5
    delivery: str = "immediate"  # immediate | hourly | daily
    digest_at: time | None = None
    time_zone: str = "UTC"
    story_id: int | None = None
    item_id: int | None = None
    user_id: int | None = None


@dataclass(frozen=True)
class Subscription:
    id: int
    user_id: int | None
    email: str
    kind: str
    keywords: list[str]
    tags: list[str]
    feed_kinds: list[str]
    languages: list[str]
    min_probability: float
    delivery: str
    digest_at: time | None
    time_zone: str
    story_id: int | None
    item_id: int | None
    last_digest_at: datetime
    unsubscribed_at: datetime | None
    created_at: datetime = field(compare=False)
    # Goes up at each re-subscription; unsubscribe links name the one they were mailed for.
    generation: int = 0

    @property
    def digest(self) -> bool:
        return self.delivery != "immediate"


def _canonical(values: Sequence[str]) -> list[str]:
    return sorted({v.strip() for v in values if v.strip()})


def subscribe(conn: psycopg.Connection, rule: Rule) -> int:
    """Store a rule; the same rule for the same address is updated and re-activated (a new
    generation, so unsubscribe links mailed before no longer work)."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO alert_subscriptions
                   (user_id, email, kind, keywords, tags, feed_kinds, languages, min_probability,
                    delivery, digest_at, time_zone, story_id, item_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (email, kind, keywords, tags, feed_kinds, languages, story_id, item_id)
               DO UPDATE SET min_probability = EXCLUDED.min_probability,
                   delivery = EXCLUDED.delivery, digest_at = EXCLUDED.digest_at,
                   time_zone = EXCLUDED.time_zone,
                   user_id = coalesce(EXCLUDED.user_id, alert_subscriptions.user_id),
                   generation = alert_subscriptions.generation
                       + (alert_subscriptions.unsubscribed_at IS NOT NULL)::int,
                   unsubscribed_at = NULL,
                   last_digest_at = CASE WHEN alert_subscriptions.unsubscribed_at IS NULL
                                         THEN alert_subscriptions.last_digest_at ELSE now() END
               RETURNING id""",
            (
                rule.user_id,
                rule.email,
                rule.kind,
                _canonical(rule.keywords),
                _canonical(rule.tags),
                _canonical(rule.feed_kinds),
                _canonical([lang.lower() for lang in rule.languages]),
                rule.min_probability,
                rule.delivery,
                rule.digest_at,
                rule.time_zone,
                rule.story_id,
                rule.item_id,
            ),
        )
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def active(conn: psycopg.Connection, kind: str | None = None) -> list[Subscription]:
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            f"""SELECT {COLUMNS} FROM alert_subscriptions
                WHERE unsubscribed_at IS NULL AND (%(kind)s::text IS NULL OR kind = %(kind)s)
                ORDER BY id""",
            {"kind": kind},
        )
        return cur.fetchall()


def listing(
    conn: psycopg.Connection, email: str | None = None, include_removed: bool = False
) -> list[Subscription]:
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            f"""SELECT {COLUMNS} FROM alert_subscriptions
                WHERE (%(email)s::text IS NULL OR email = %(email)s)
                  AND (%(all)s OR unsubscribed_at IS NULL)
                ORDER BY id""",
            {"email": email, "all": include_removed},
        )
        return cur.fetchall()


def get(conn: psycopg.Connection, subscription_id: int) -> Subscription | None:
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(f"SELECT {COLUMNS} FROM alert_subscriptions WHERE id = %s", (subscription_id,))
        return cur.fetchone()


def followed_titles(conn: psycopg.Connection, subscription_ids: Sequence[int]) -> dict[int, str]:
    """The title of the story (or rumour item) each follow subscription is about."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT s.id, coalesce(st.title, i.title) FROM alert_subscriptions s
               LEFT JOIN stories st ON st.id = s.story_id LEFT JOIN items i ON i.id = s.item_id
               WHERE s.id = ANY(%s) AND s.kind = 'story'""",
            (list(subscription_ids),),
        )
        return {row[0]: row[1] for row in cur.fetchall() if row[1]}


def unsubscribe(conn: psycopg.Connection, subscription_id: int) -> bool:
    """Stop a subscription and cancel what it has not sent yet; False when it is not active.

    The row is kept (marked), so ops alerts do not fall back to every admin once the last
    ops subscriber leaves, and the outbox keeps its history."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE alert_subscriptions SET unsubscribed_at = now()
               WHERE id = %s AND unsubscribed_at IS NULL RETURNING id""",
            (subscription_id,),
        )
        if cur.fetchone() is None:
            return False
        cur.execute(
            """UPDATE alert_outbox SET status = 'cancelled', last_error = NULL,
                      payload = coalesce(payload, '{}') || '{"cancelled": "unsubscribed"}'
               WHERE subscription_id = %s AND status IN ('pending', 'held')""",
            (subscription_id,),
        )
        return True


def with_held_alerts(conn: psycopg.Connection) -> list[Subscription]:
    """Digest subscriptions that have alerts waiting to be collapsed into a digest."""
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute(
            f"""SELECT {COLUMNS} FROM alert_subscriptions s
                WHERE unsubscribed_at IS NULL AND delivery <> 'immediate'
                  AND EXISTS (SELECT 1 FROM alert_outbox o
                              WHERE o.subscription_id = s.id AND o.status = 'held')
                ORDER BY id"""
        )
        return cur.fetchall()


def ops_recipients(conn: psycopg.Connection) -> list[tuple[int | None, str]]:
    """(subscription id, email) of ops subscribers; every admin while nobody ever subscribed."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT id, email FROM alert_subscriptions
               WHERE kind = 'ops' AND unsubscribed_at IS NULL ORDER BY id"""
        )
        found: list[tuple[int | None, str]] = [(r[0], r[1]) for r in cur.fetchall()]
        if found:
            return found
        cur.execute("SELECT 1 FROM alert_subscriptions WHERE kind = 'ops' LIMIT 1")
        if cur.fetchone() is not None:
            return []
        # Nobody has ever subscribed: every enabled admin gets them, so no failure goes unseen.
        return [(None, email) for email in users.admin_emails(conn)]


@dataclass(frozen=True)
class PairFollower:
    """A story subscription that follows the rumour of a pair, with what its alert says."""

    subscription_id: int
    email: str
    digest: bool
    min_probability: float
    pair_id: int
    score: float
    status: str
    story_id: int | None
    rumour_id: int
    rumour_title: str
    rumour_source: str
    clarification_id: int
    title: str
    summary: str
    url: str | None
    source: str
    source_kind: str
    seen_at: datetime


def pair_followers(conn: psycopg.Connection, pair_ids: Sequence[int]) -> list[PairFollower]:
    """Every live story subscription following the rumour of each pair: the item itself, its
    story, or any item of its story. By subscription, clarification, then best score first."""
    with conn.cursor(row_factory=class_row(PairFollower)) as cur:
        cur.execute(
            """SELECT s.id AS subscription_id, s.email, s.delivery <> 'immediate' AS digest,
                      s.min_probability, p.id AS pair_id, p.score, p.status, r.story_id,
                      r.id AS rumour_id, r.title AS rumour_title,
                      coalesce(rf.title, rf.host) AS rumour_source,
                      c.id AS clarification_id, c.title, c.summary, c.url,
                      coalesce(cf.title, cf.host) AS source, cf.kind AS source_kind,
                      coalesce(c.published_at, c.fetched_at) AS seen_at
               FROM pairs p
               JOIN items r ON r.id = p.rumour_id JOIN feeds rf ON rf.id = r.feed_id
               JOIN items c ON c.id = p.clarification_id JOIN feeds cf ON cf.id = c.feed_id
               JOIN alert_subscriptions s ON s.kind = 'story' AND s.unsubscribed_at IS NULL
                    AND (s.item_id = r.id OR s.story_id = r.story_id
                         OR s.item_id IN (SELECT m.id FROM items m
                                          WHERE m.story_id = r.story_id))
               WHERE p.id = ANY(%s)
               ORDER BY s.id, p.clarification_id, p.score DESC, p.id""",
            (list(pair_ids),),
        )
        return cur.fetchall()


@dataclass(frozen=True)
class AlertItem:
    """What a rumour alert says about its item, and what subscriptions filter on."""

    id: int
    title: str
    summary: str
    url: str | None
    language: str | None
    feed_kind: str
    feed_title: str
    feed_tags: list[str]
    story_id: int | None
    seen_at: datetime


def alert_items(conn: psycopg.Connection, item_ids: Sequence[int]) -> list[AlertItem]:
    with conn.cursor(row_factory=class_row(AlertItem)) as cur:
        cur.execute(
            """SELECT i.id, i.title, i.summary, i.url,
                      coalesce(i.language, f.language) AS language, f.kind AS feed_kind,
                      coalesce(f.title, f.host) AS feed_title, f.tags AS feed_tags, i.story_id,
                      coalesce(i.published_at, i.fetched_at) AS seen_at
               FROM items i JOIN feeds f ON f.id = i.feed_id
               WHERE i.id = ANY(%s) ORDER BY i.id""",
            (list(item_ids),),
        )
        return cur.fetchall()
