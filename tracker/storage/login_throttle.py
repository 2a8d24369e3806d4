"""Failed logins per account and per client address, shared by every web process.

The policy (limits, lock lengths) lives in tracker.web.throttle; these functions only count
and lock. Times come from the caller so the policy can be tested with a clock of its own."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class Counter:
    failures: int
    # Earlier locks not yet forgotten: the next lock lasts longer.
    lockouts: int


def locked_until(
    conn: psycopg.Connection, keys: list[tuple[str, str]], now: datetime
) -> datetime | None:
    """The latest lock end after `now` among (scope, key) pairs, or None when none is locked."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT max(locked_until) FROM login_throttle
               WHERE (scope, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
                 AND locked_until > %s""",
            ([scope for scope, _ in keys], [key for _, key in keys], now),
        )
        row = cur.fetchone()
        return row[0] if row else None


def record_failure(
    conn: psycopg.Connection,
    scope: str,
    key: str,
    now: datetime,
    window: timedelta,
    forget_after: timedelta,
) -> Counter:
    """Count one failure; a window older than `window` starts again at one.

    One upsert, so concurrent failures from several web processes are all counted."""
    with conn.cursor(row_factory=class_row(Counter)) as cur:
        cur.execute(
            """INSERT INTO login_throttle AS t (scope, key, failures, window_start)
               VALUES (%(scope)s, %(key)s, 1, %(now)s)
               ON CONFLICT (scope, key) DO UPDATE SET
                 failures = CASE WHEN t.window_start <= %(window_from)s THEN 1
                                 ELSE t.failures + 1 END,
                 window_start = CASE WHEN t.window_start <= %(window_from)s THEN %(now)s
                                     ELSE t.window_start END,
                 lockouts = CASE WHEN t.locked_until < %(forget_from)s THEN 0
                                 ELSE t.lockouts END
               RETURNING failures, lockouts""",
            {
                "scope": scope,
                "key": key,
                "now": now,
                "window_from": now - window,
                "forget_from": now - forget_after,
            },
        )
        counter = cur.fetchone()
        assert counter is not None
        return counter


def lock(conn: psycopg.Connection, scope: str, key: str, now: datetime, until: datetime) -> None:
    """Lock a key until `until`; its failures start again from zero."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE login_throttle
               SET locked_until = %s, lockouts = lockouts + 1, failures = 0, window_start = %s
               WHERE scope = %s AND key = %s""",
            (until, now, scope, key),
        )


def clear(conn: psycopg.Connection, scope: str, key: str) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM login_throttle WHERE scope = %s AND key = %s", (scope, key))


def purge(conn: psycopg.Connection, before: datetime) -> int:
    """Forget keys with no failure and no lock since `before` (guessed emails pile up)."""
    with conn.cursor() as cur:
        cur.execute(
            """DELETE FROM login_throttle
               WHERE window_start < %(before)s
                 AND (locked_until IS NULL OR locked_until < %(before)s)""",
            {"before": before},
        )
        return cur.rowcount
