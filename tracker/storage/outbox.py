"""The alert outbox: rows written with the event, claimed and sent by the relay.

Statuses: `pending` (due at next_attempt_at), `sending` (claimed, leased), `sent`, `dead`
(gave up), `held` (waiting for its subscription's digest), `digested` (sent inside the digest
row `digest_id`), `cancelled` (unsubscribed, a story already alerted to that subscription, or
the confirmation that caused it undone; `payload.cancelled` says which).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from tracker.storage import subscriptions

# The subscription's generation is read at send time: a mail's unsubscribe link must name the
# generation that is current when it goes out (tracker.pipeline.alert_mail.unsubscribe_token).
ROW_COLUMNS = """id, dedupe_key, recipient, subject, body_text, attempts, kind, subscription_id,
    payload, (SELECT s.generation FROM alert_subscriptions s
              WHERE s.id = alert_outbox.subscription_id) AS subscription_generation"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    dedupe_key: str
    recipient: str
    subject: str
    body_text: str
    attempts: int
    kind: str = "message"
    subscription_id: int | None = None
    payload: dict[str, Any] | None = None
    subscription_generation: int | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """A row as `tracker alerts outbox` shows it."""

    id: int
    kind: str
    recipient: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    subscription_id: int | None
    # Why a cancelled row was never sent: "same story", "confirmation undone", "unsubscribed".
    cancel_reason: str | None = None


@dataclass(frozen=True)
class Event:
    """An alert to queue: the facts its templates need travel in `payload`."""

    dedupe_key: str
    recipient: str
    subject: str
    kind: str
    payload: dict[str, Any]
    subscription_id: int | None = None
    item_id: int | None = None
    held: bool = False


def subscribe(
    conn: psycopg.Connection,
    email: str,
    keywords: Sequence[str],
    min_probability: float,
    user_id: int | None = None,
) -> int:
    """An immediate rumour subscription on keywords (the simple case of `subscriptions`)."""
    rule = subscriptions.Rule(
        email=email, keywords=keywords, min_probability=min_probability, user_id=user_id
    )
    return subscriptions.subscribe(conn, rule)


def enqueue(
    conn: psycopg.Connection, dedupe_key: str, recipient: str, subject: str, body_text: str
) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO alert_outbox (dedupe_key, recipient, subject, body_text)
               VALUES (%s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
            (dedupe_key, recipient, subject, body_text),
        )
        return cur.fetchone() is not None


def queue(conn: psycopg.Connection, event: Event) -> bool:
    """Queue an alert unless its dedupe key was queued before; True when it is new."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO alert_outbox (dedupe_key, recipient, subject, kind, payload,
                                        subscription_id, item_id, status)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
            (
                event.dedupe_key,
                event.recipient,
                event.subject,
                event.kind,
                Jsonb(event.payload),
                event.subscription_id,
                event.item_id,
                "held" if event.held else "pending",
            ),
        )
        return cur.fetchone() is not None


def queue_ops(conn: psycopg.Connection, event_key: str, subject: str, body_text: str) -> int:
    """Tell the ops subscribers (or every admin while there are none), once per event key."""
    queued = 0
    for sub_id, email in subscriptions.ops_recipients(conn):
        who = f"sub:{sub_id}" if sub_id is not None else f"admin:{email}"
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO alert_outbox
                       (dedupe_key, recipient, subject, body_text, kind, subscription_id)
                   VALUES (%s, %s, %s, %s, 'ops', %s)
                   ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
                (f"ops:{who}:{event_key}", email, subject[:150], body_text, sub_id),
            )
            queued += cur.fetchone() is not None
    return queued


def cancel_repeated_stories(conn: psycopg.Connection) -> int:
    """Cancel unsent rumour alerts whose item has joined a story that the same subscription
    was already alerted about (stories form after classification, in the pairing stage)."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE alert_outbox o SET status = 'cancelled',
                      last_error = NULL, payload = o.payload || '{"cancelled": "same story"}'
               FROM items i
               WHERE o.status IN ('pending', 'held') AND o.kind = 'rumour'
                 AND i.id = o.item_id AND i.story_id IS NOT NULL
                 AND EXISTS (SELECT 1 FROM alert_outbox p JOIN items pi ON pi.id = p.item_id
                             WHERE p.subscription_id = o.subscription_id AND p.kind = 'rumour'
                               AND p.id < o.id AND p.status <> 'cancelled'
                               AND pi.story_id = i.story_id)"""
        )
        return cur.rowcount


@dataclass(frozen=True)
class Withdrawn:
    cancelled: int  # not sent yet, and now never will be
    sent: int  # already sent, being sent, or folded into a digest: past taking back


def withdraw_confirmation(conn: psycopg.Connection, pair_id: int) -> Withdrawn:
    """Cancel the unsent alerts that confirming `pair_id` queued (tracker.pipeline.alert_fanout
    .pairs); count those already out. Call in the undo's transaction.

    A cancelled row's dedupe key is set aside, so confirming the pair again alerts again."""
    caused_by = """kind = 'clarification_confirmed'
        AND item_id = (SELECT clarification_id FROM pairs WHERE id = %(pair)s)
        AND (payload ->> 'pair_id')::bigint = %(pair)s"""
    with conn.cursor() as cur:
        cur.execute(
            f"""UPDATE alert_outbox SET status = 'cancelled', last_error = NULL,
                       dedupe_key = dedupe_key || ':withdrawn:' || id,
                       payload = payload || '{{"cancelled": "confirmation undone"}}'
                WHERE status IN ('pending', 'held') AND {caused_by}""",
            {"pair": pair_id},
        )
        cancelled = cur.rowcount
        cur.execute(
            f"""SELECT count(*) FROM alert_outbox
                WHERE status IN ('sending', 'sent', 'digested') AND {caused_by}""",
            {"pair": pair_id},
        )
        row = cur.fetchone()
    return Withdrawn(cancelled, int(row[0]) if row else 0)


def collapse_digest(
    conn: psycopg.Connection, sub: subscriptions.Subscription, slot: datetime
) -> int | None:
    """Collapse a subscription's held alerts into one digest row for `slot`; returns its id,
    or None when another relay already did (or there is nothing). Call in a transaction."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT 1 FROM alert_subscriptions
               WHERE id = %s AND last_digest_at < %s AND unsubscribed_at IS NULL
               FOR UPDATE SKIP LOCKED""",
            (sub.id, slot),
        )
        if cur.fetchone() is None:
            return None
        cur.execute(
            "UPDATE alert_subscriptions SET last_digest_at = %s WHERE id = %s", (slot, sub.id)
        )
        cur.execute(
            """SELECT id, kind, payload FROM alert_outbox
               WHERE subscription_id = %s AND status = 'held' ORDER BY id FOR UPDATE""",
            (sub.id,),
        )
        held = cur.fetchall()
        if not held:
            return None
        subject = f"Rumour Tracker digest: {_alerts(len(held))}"
        extra = {"delivery": sub.delivery, "slot": slot.isoformat()}
        key = f"digest:{sub.id}:{slot.isoformat()}"
        return _digest(cur, key, sub.email, subject, held, extra, sub.id)


def _alerts(n: int) -> str:
    return f"{n} new alert{'s' if n > 1 else ''}"


def _digest(
    cur: psycopg.Cursor[Any],
    dedupe_key: str,
    recipient: str,
    subject: str,
    held: Sequence[tuple[Any, ...]],
    extra: dict[str, Any],
    subscription_id: int,
) -> int | None:
    """One digest row carrying `held` (id, kind, payload) rows, which it marks digested."""
    entries = [{**payload, "kind": kind} for _, kind, payload, *_ in held]
    cur.execute(
        """INSERT INTO alert_outbox (dedupe_key, recipient, subject, kind, payload,
                                    subscription_id)
           VALUES (%s, %s, %s, 'digest', %s, %s)
           ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
        (dedupe_key, recipient, subject, Jsonb({"entries": entries, **extra}), subscription_id),
    )
    row = cur.fetchone()
    if row is None:
        return None
    cur.execute(
        "UPDATE alert_outbox SET status = 'digested', digest_id = %s WHERE id = ANY(%s)",
        (row[0], [h[0] for h in held]),
    )
    return int(row[0])


# Never-tried rows only: a row that failed may have reached the server before the error
# (a dropped QUIT), and folding it into a digest would send it again under another Message-ID.
_BURSTABLE = """status = 'pending' AND attempts = 0 AND next_attempt_at <= now()
    AND kind IN ('rumour', 'clarification_suggested', 'clarification_confirmed')"""


def collapse_bursts(conn: psycopg.Connection, at_least: int) -> int:
    """Fold each subscription's burst (at least `at_least` immediate alerts due at once) into
    one digest row; returns how many digests were made. Safe beside other relays: rows one
    of them holds are skipped. Call in a transaction, before claiming."""
    made = 0
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT subscription_id FROM alert_outbox
                WHERE subscription_id IS NOT NULL AND {_BURSTABLE}
                GROUP BY subscription_id HAVING count(*) >= %s ORDER BY subscription_id""",
            (at_least,),
        )
        for (sub_id,) in cur.fetchall():
            cur.execute(
                f"""SELECT id, kind, payload, recipient FROM alert_outbox
                    WHERE subscription_id = %s AND {_BURSTABLE}
                    ORDER BY id FOR UPDATE SKIP LOCKED""",
                (sub_id,),
            )
            burst = cur.fetchall()
            if len(burst) < at_least:
                continue
            subject = f"Rumour Tracker: {_alerts(len(burst))} at once"
            key = f"burst:{sub_id}:{burst[0][0]}"
            extra = {"delivery": "burst"}
            made += _digest(cur, key, burst[0][3], subject, burst, extra, sub_id) is not None
    return made


def entries(
    conn: psycopg.Connection, failed_only: bool = False, limit: int = 100
) -> list[OutboxEntry]:
    """Newest first; `failed_only`: given up on, or waiting to retry after an error."""
    with conn.cursor(row_factory=class_row(OutboxEntry)) as cur:
        cur.execute(
            """SELECT id, kind, recipient, subject, status, attempts, last_error,
                      next_attempt_at, created_at, sent_at, subscription_id,
                      payload ->> 'cancelled' AS cancel_reason
               FROM alert_outbox
               WHERE NOT %(failed)s OR status = 'dead' OR last_error IS NOT NULL
               ORDER BY id DESC LIMIT %(limit)s""",
            {"failed": failed_only, "limit": limit},
        )
        return cur.fetchall()


def backlog(conn: psycopg.Connection) -> int:
    """Alerts due or being sent: what the relay has not got through yet."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM alert_outbox WHERE status IN ('pending', 'sending')")
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def claim(conn: psycopg.Connection, limit: int, lease_s: int) -> list[OutboxRow]:
    """Claim due rows; rows another relay holds are skipped, an expired lease is taken over."""
    with conn.cursor(row_factory=class_row(OutboxRow)) as cur:
        cur.execute(
            f"""UPDATE alert_outbox SET status = 'sending', attempts = attempts + 1,
                      lease_until = now() + make_interval(secs => %s)
               WHERE id IN (SELECT id FROM alert_outbox
                            WHERE (status = 'pending' AND next_attempt_at <= now())
                               OR (status = 'sending' AND lease_until < now())
                            ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING {ROW_COLUMNS}""",
            (lease_s, limit),
        )
        return cur.fetchall()


def bury_exhausted(conn: psycopg.Connection, max_attempts: int) -> int:
    """Rows whose sends keep dying mid-way (lease expired) stop being retried after N tries."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE alert_outbox SET status = 'dead', lease_until = NULL,
                      last_error = coalesce(last_error, 'gave up: no send completed')
               WHERE status = 'sending' AND lease_until < now() AND attempts >= %s""",
            (max_attempts,),
        )
        return cur.rowcount


def mark_sent(conn: psycopg.Connection, row_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE alert_outbox SET status = 'sent', sent_at = now(), lease_until = NULL,
                      last_error = NULL WHERE id = %s""",
            (row_id,),
        )


def release(conn: psycopg.Connection, row_ids: Sequence[int]) -> None:
    """Claimed rows never tried: back to pending now, the claim's attempt not counted."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE alert_outbox SET status = 'pending', lease_until = NULL,
                      attempts = greatest(attempts - 1, 0)
               WHERE id = ANY(%s) AND status = 'sending'""",
            (list(row_ids),),
        )


def mark_failed(
    conn: psycopg.Connection, row_id: int, error: str, retry_in_s: float, dead: bool
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE alert_outbox SET status = %s, last_error = %s, lease_until = NULL,
                      next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s""",
            ("dead" if dead else "pending", error[:2000], retry_in_s, row_id),
        )
