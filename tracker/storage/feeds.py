"""Feeds: registration, the due-feed lease, and the outcome of each poll."""

from dataclasses import dataclass
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from tracker.domain import Feed

FEED_COLUMNS = """id, url, title, kind, language, enabled, status, last_error, error_count,
    next_poll_at, last_polled_at, etag, last_modified"""


@dataclass(frozen=True)
class Lease:
    feed_id: int
    token: UUID


def add(
    conn: psycopg.Connection,
    url: str,
    kind: str,
    title: str | None = None,
    language: str | None = None,
    poll_interval_s: int = 900,
) -> tuple[Feed, bool]:
    """Register a feed; returns it and whether it was new (adding twice is harmless)."""
    with conn.cursor(row_factory=class_row(Feed)) as cur:
        cur.execute(
            f"""INSERT INTO feeds (url, kind, title, language, poll_interval_s)
                VALUES (%s, %s, %s, %s, %s) ON CONFLICT (url) DO NOTHING
                RETURNING {FEED_COLUMNS}""",
            (url, kind, title, language, poll_interval_s),
        )
        created = cur.fetchone()
        if created is not None:
            return created, True
        cur.execute(f"SELECT {FEED_COLUMNS} FROM feeds WHERE url = %s", (url,))
        existing = cur.fetchone()
        assert existing is not None
        return existing, False


def list_all(conn: psycopg.Connection) -> list[Feed]:
    with conn.cursor(row_factory=class_row(Feed)) as cur:
        cur.execute(f"SELECT {FEED_COLUMNS} FROM feeds ORDER BY id")
        return cur.fetchall()


def get(conn: psycopg.Connection, feed_id: int) -> Feed | None:
    with conn.cursor(row_factory=class_row(Feed)) as cur:
        cur.execute(f"SELECT {FEED_COLUMNS} FROM feeds WHERE id = %s", (feed_id,))
        return cur.fetchone()


def claim_due(conn: psycopg.Connection, limit: int, lease_s: int) -> list[Lease]:
    """Lease up to `limit` due feeds; a feed leased by another dispatcher is skipped."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET lease_until = now() + make_interval(secs => %s),
                                lease_token = gen_random_uuid()
               WHERE id IN (SELECT id FROM feeds
                            WHERE enabled AND next_poll_at <= now()
                              AND (lease_until IS NULL OR lease_until < now())
                            ORDER BY next_poll_at LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING id, lease_token""",
            (lease_s, limit),
        )
        return [Lease(feed_id=row[0], token=row[1]) for row in cur.fetchall()]


def holds_lease(conn: psycopg.Connection, lease: Lease) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM feeds WHERE id = %s AND lease_token = %s",
            (lease.feed_id, lease.token),
        )
        return cur.fetchone() is not None


def record_success(
    conn: psycopg.Connection,
    lease: Lease,
    *,
    title: str | None,
    etag: str | None,
    last_modified: str | None,
    status: str,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET status = %s, last_error = NULL, error_count = 0,
                   title = coalesce(title, %s), etag = %s, last_modified = %s,
                   last_polled_at = now(),
                   next_poll_at = now() + make_interval(secs => poll_interval_s),
                   lease_until = NULL, lease_token = NULL
               WHERE id = %s AND lease_token = %s""",
            (status, title, etag, last_modified, lease.feed_id, lease.token),
        )


def record_failure(
    conn: psycopg.Connection, lease: Lease, *, status: str, error: str, retry_in_s: float
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET status = %s, last_error = %s, error_count = error_count + 1,
                   last_polled_at = now(),
                   next_poll_at = now() + make_interval(secs => %s),
                   lease_until = NULL, lease_token = NULL
               WHERE id = %s AND lease_token = %s""",
            (status, error[:2000], retry_in_s, lease.feed_id, lease.token),
        )
