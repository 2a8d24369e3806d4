"""The alert outbox: rows written with the event, claimed and sent by the relay."""

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class Subscription:
    id: int
    email: str
    keywords: list[str]
    min_probability: float


@dataclass(frozen=True)
class OutboxRow:
    id: int
    dedupe_key: str
    recipient: str
    subject: str
    body_text: str
    attempts: int


def subscribe(
    conn: psycopg.Connection,
    email: str,
    keywords: Sequence[str],
    min_probability: float,
    user_id: int | None = None,
) -> int:
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO alert_subscriptions (user_id, email, keywords, min_probability)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (email, keywords)
               DO UPDATE SET min_probability = EXCLUDED.min_probability
               RETURNING id""",
            (user_id, email, sorted(set(keywords)), min_probability),
        )
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def subscriptions(conn: psycopg.Connection) -> list[Subscription]:
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        cur.execute("SELECT id, email, keywords, min_probability FROM alert_subscriptions")
        return cur.fetchall()


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


def claim(conn: psycopg.Connection, limit: int, lease_s: int) -> list[OutboxRow]:
    """Claim due rows; rows another relay holds are skipped, an expired lease is taken over."""
    with conn.cursor(row_factory=class_row(OutboxRow)) as cur:
        cur.execute(
            """UPDATE alert_outbox SET status = 'sending', attempts = attempts + 1,
                      lease_until = now() + make_interval(secs => %s)
               WHERE id IN (SELECT id FROM alert_outbox
                            WHERE (status = 'pending' AND next_attempt_at <= now())
                               OR (status = 'sending' AND lease_until < now())
                            ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING id, dedupe_key, recipient, subject, body_text, attempts""",
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


def mark_failed(
    conn: psycopg.Connection, row_id: int, error: str, retry_in_s: float, dead: bool
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE alert_outbox SET status = %s, last_error = %s, lease_until = NULL,
                      next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s""",
            ("dead" if dead else "pending", error[:2000], retry_in_s, row_id),
        )
