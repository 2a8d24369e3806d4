"""Feeds: registration and management, the due-feed lease, and the outcome of each poll."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from tracker.domain import Feed

FEED_COLUMNS = """id, url, title, kind, language, tags, enabled, status, last_error, error_count,
    failing_since, disabled_reason, poll_interval_s, min_interval_s, max_interval_s,
    next_poll_at, last_polled_at, etag, last_modified, body_hash"""


@dataclass(frozen=True)
class Lease:
    feed_id: int
    token: UUID


@dataclass(frozen=True)
class NewFeed:
    url: str
    kind: str = "other"
    title: str | None = None
    language: str | None = None
    tags: Sequence[str] = ()
    min_interval_s: int = 300
    max_interval_s: int = 86400


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def add(conn: psycopg.Connection, feed: NewFeed, poll_interval_s: int = 900) -> tuple[Feed, bool]:
    """Register a feed; returns it and whether it was new (adding twice is harmless)."""
    interval = min(max(poll_interval_s, feed.min_interval_s), feed.max_interval_s)
    with conn.cursor(row_factory=class_row(Feed)) as cur:
        cur.execute(
            f"""INSERT INTO feeds (url, host, kind, title, language, tags, min_interval_s,
                                   max_interval_s, poll_interval_s)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (url) DO NOTHING
                RETURNING {FEED_COLUMNS}""",
            (
                feed.url,
                host_of(feed.url),
                feed.kind,
                feed.title,
                feed.language,
                sorted(set(feed.tags)),
                feed.min_interval_s,
                feed.max_interval_s,
                interval,
            ),
        )
        created = cur.fetchone()
        if created is not None:
            return created, True
        cur.execute(f"SELECT {FEED_COLUMNS} FROM feeds WHERE url = %s", (feed.url,))
        existing = cur.fetchone()
        assert existing is not None
        return existing, False


def add_many(conn: psycopg.Connection, new: Sequence[NewFeed], poll_interval_s: int) -> int:
    """Register many feeds in one statement (OPML import); returns how many were new."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO feeds (url, host, kind, title, language, tags, min_interval_s,
                                  max_interval_s, poll_interval_s)
               SELECT u, h, k, ti, l,
                      coalesce(string_to_array(nullif(tg, ''), chr(31)), '{}'), mn, mx, pi
               FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                           %s::text[], %s::int[], %s::int[], %s::int[])
                    AS x(u, h, k, ti, l, tg, mn, mx, pi)
               ON CONFLICT (url) DO NOTHING""",
            (
                [f.url for f in new],
                [host_of(f.url) for f in new],
                [f.kind for f in new],
                [f.title for f in new],
                [f.language for f in new],
                # unnest cannot take an array of arrays of varying length: tags travel joined.
                ["\x1f".join(sorted(set(f.tags))) for f in new],
                [f.min_interval_s for f in new],
                [f.max_interval_s for f in new],
                [min(max(poll_interval_s, f.min_interval_s), f.max_interval_s) for f in new],
            ),
        )
        return cur.rowcount


def list_all(conn: psycopg.Connection) -> list[Feed]:
    with conn.cursor(row_factory=class_row(Feed)) as cur:
        cur.execute(f"SELECT {FEED_COLUMNS} FROM feeds ORDER BY id")
        return cur.fetchall()


def get(conn: psycopg.Connection, feed_id: int) -> Feed | None:
    with conn.cursor(row_factory=class_row(Feed)) as cur:
        cur.execute(f"SELECT {FEED_COLUMNS} FROM feeds WHERE id = %s", (feed_id,))
        return cur.fetchone()


def update(
    conn: psycopg.Connection,
    feed_id: int,
    *,
    kind: str | None = None,
    title: str | None = None,
    language: str | None = None,
    tags: Sequence[str] | None = None,
    min_interval_s: int | None = None,
    max_interval_s: int | None = None,
) -> bool:
    """Edit a feed's settings; None leaves a field as it is, an empty title or language clears
    it."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET kind = coalesce(%s, kind),
                   title = nullif(coalesce(%s, title), ''),
                   language = nullif(coalesce(%s, language), ''), tags = coalesce(%s, tags),
                   min_interval_s = coalesce(%s, min_interval_s),
                   max_interval_s = coalesce(%s, max_interval_s)
               WHERE id = %s""",
            (
                kind,
                title,
                language,
                sorted(set(tags)) if tags is not None else None,
                min_interval_s,
                max_interval_s,
                feed_id,
            ),
        )
        return cur.rowcount == 1


def set_enabled(
    conn: psycopg.Connection, feed_id: int, enabled: bool, reason: str | None = None
) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET enabled = %s, disabled_reason = %s,
                   status = CASE WHEN %s THEN 'new' ELSE 'disabled' END,
                   error_count = CASE WHEN %s THEN 0 ELSE error_count END,
                   failing_since = CASE WHEN %s THEN NULL ELSE failing_since END,
                   next_poll_at = CASE WHEN %s THEN now() ELSE next_poll_at END
               WHERE id = %s""",
            (enabled, None if enabled else reason, enabled, enabled, enabled, enabled, feed_id),
        )
        return cur.rowcount == 1


def delete(conn: psycopg.Connection, feed_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM feeds WHERE id = %s", (feed_id,))
        return cur.rowcount == 1


def poll_now(conn: psycopg.Connection, feed_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("UPDATE feeds SET next_poll_at = now() WHERE id = %s AND enabled", (feed_id,))
        return cur.rowcount == 1


# Due feeds one dispatch (a beat tick) claims at most; each lease then goes out as its own task.
DISPATCH_BATCH = 200


def claim_due(conn: psycopg.Connection, limit: int, lease_s: int, per_host: int = 4) -> list[Lease]:
    """Lease up to `limit` due feeds, at most `per_host` leased per host at any time; a feed
    leased by another dispatcher is skipped."""
    with conn.cursor() as cur:
        cur.execute(
            """WITH busy AS (SELECT host, count(*) AS n FROM feeds
                             WHERE lease_until > now() GROUP BY host),
                    due AS (SELECT f.id, f.host, f.next_poll_at,
                                   row_number() OVER (PARTITION BY f.host
                                                      ORDER BY f.next_poll_at) AS rank
                            FROM feeds f
                            WHERE f.enabled AND f.next_poll_at <= now()
                              AND (f.lease_until IS NULL OR f.lease_until < now()))
               UPDATE feeds SET lease_until = now() + make_interval(secs => %s),
                                lease_token = gen_random_uuid()
               WHERE id IN (SELECT id FROM feeds WHERE id IN (
                                SELECT due.id FROM due LEFT JOIN busy USING (host)
                                WHERE due.rank + coalesce(busy.n, 0) <= %s)
                              -- Checked again on the locked row: another dispatcher may have
                              -- leased it after this statement's snapshot was taken.
                              AND enabled AND next_poll_at <= now()
                              AND (lease_until IS NULL OR lease_until < now())
                            -- The limit counts locked rows only: below the lock it would pick
                            -- the rows a concurrent dispatcher holds and then skip them all.
                            ORDER BY next_poll_at LIMIT %s
                            FOR UPDATE SKIP LOCKED)
               RETURNING id, lease_token""",
            (lease_s, per_host, limit),
        )
        return [Lease(feed_id=row[0], token=row[1]) for row in cur.fetchall()]


def release(conn: psycopg.Connection, leases: Sequence[Lease]) -> None:
    """Give back leases whose fetch was never queued (the broker went away while dispatch sent
    them): the next dispatch leases those feeds again."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds f SET lease_until = NULL, lease_token = NULL
               FROM unnest(%s::bigint[], %s::uuid[]) AS l(id, token)
               WHERE f.id = l.id AND f.lease_token = l.token""",
            ([lease.feed_id for lease in leases], [lease.token for lease in leases]),
        )


def start_fetch(conn: psycopg.Connection, lease: Lease, running_s: float) -> Feed | None:
    """The feed, if this lease still holds it, now held for `running_s` only: dispatch's lease
    covers the wait in the queue, this one the fetch, so a fetch whose worker dies holds its
    feed only that long. A stale or redelivered message gets None."""
    with conn.cursor(row_factory=class_row(Feed)) as cur:
        cur.execute(
            f"""UPDATE feeds SET lease_until = now() + make_interval(secs => %s)
                WHERE id = %s AND lease_token = %s RETURNING {FEED_COLUMNS}""",
            (running_s, lease.feed_id, lease.token),
        )
        return cur.fetchone()


@dataclass(frozen=True)
class Success:
    status: str
    title: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    interval_s: int
    new_url: str | None = None


def record_success(conn: psycopg.Connection, lease: Lease, outcome: Success) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET status = %s, last_error = NULL, error_count = 0,
                   failing_since = NULL, title = coalesce(title, %s), etag = %s,
                   last_modified = %s, body_hash = %s, poll_interval_s = %s,
                   url = coalesce(%s, url), host = coalesce(%s, host),
                   last_polled_at = now(), next_poll_at = now() + make_interval(secs => %s),
                   lease_until = NULL, lease_token = NULL
               WHERE id = %s AND lease_token = %s""",
            (
                outcome.status,
                outcome.title,
                outcome.etag,
                outcome.last_modified,
                outcome.body_hash,
                outcome.interval_s,
                outcome.new_url,
                host_of(outcome.new_url) if outcome.new_url else None,
                outcome.interval_s,
                lease.feed_id,
                lease.token,
            ),
        )


def set_url(conn: psycopg.Connection, feed_id: int, url: str) -> None:
    """Point a feed at a new URL (a rotated key, a moved feed): polled afresh, at once."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET url = %s, host = %s, etag = NULL, last_modified = NULL,
                   body_hash = NULL, next_poll_at = now()
               WHERE id = %s AND url <> %s""",
            (url, host_of(url), feed_id, url),
        )


def url_taken(conn: psycopg.Connection, url: str, feed_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM feeds WHERE url = %s AND id <> %s", (url, feed_id))
        return cur.fetchone() is not None


def record_failure(
    conn: psycopg.Connection,
    lease: Lease,
    *,
    status: str,
    error: str,
    retry_in_s: float,
    disable_after: timedelta | None,
    gone: bool = False,
) -> bool:
    """Record a failed poll; returns True when it disabled the feed (gone, or failing for
    longer than `disable_after`)."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE feeds SET status = %(status)s, last_error = %(error)s,
                   error_count = error_count + 1,
                   failing_since = coalesce(failing_since, now()),
                   last_polled_at = now(),
                   next_poll_at = now() + make_interval(secs => %(retry)s),
                   lease_until = NULL, lease_token = NULL,
                   enabled = NOT (%(gone)s OR coalesce(failing_since, now())
                                  < now() - %(after)s::interval),
                   disabled_reason = CASE
                       WHEN %(gone)s THEN 'gone (HTTP 410): ' || %(error)s
                       WHEN coalesce(failing_since, now()) < now() - %(after)s::interval
                       THEN 'failing since ' || to_char(failing_since, 'YYYY-MM-DD HH24:MI TZ')
                            || ': ' || %(error)s
                       ELSE disabled_reason END
               WHERE id = %(id)s AND lease_token = %(token)s
               RETURNING NOT enabled""",
            {
                "status": status,
                "error": error[:2000],
                "retry": retry_in_s,
                "gone": gone,
                "after": disable_after or timedelta(days=36500),
                "id": lease.feed_id,
                "token": lease.token,
            },
        )
        row = cur.fetchone()
        return bool(row and row[0])
