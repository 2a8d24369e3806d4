"""Web sessions: one row per login, found by the sha256 of the random id the cookie carries.

A session is live while its row exists, its epoch is the user's (tracker.storage.users bumps
the epoch to end every session of a user), it was used within the idle timeout and it began
within the absolute lifetime. Rows past those are deleted at the user's next login."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row

from tracker.storage.users import USER_COLUMNS, User

# last_seen_at is written at most this often per session, not on every request.
TOUCH_EVERY = timedelta(minutes=1)
# Longer values are cut: the account page only needs to recognise a browser and a network.
USER_AGENT_CHARS = 200


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta

    def bounds(self, now: datetime) -> dict[str, datetime]:
        """LIVE's parameters: last used after `idle`, begun after `born`."""
        return {"idle": now - self.idle, "born": now - self.absolute}


# The one rule of a live session (on `web_sessions s JOIN users u`), with the bounds of
# Lifetimes.bounds: every query below asks it, or its negation, of the same row.
LIVE = """s.epoch = u.session_epoch AND s.last_seen_at >= %(idle)s
    AND s.created_at >= %(born)s"""


@dataclass(frozen=True)
class WebSession:
    id: int
    created_at: datetime
    last_seen_at: datetime
    user_agent: str
    address: str


def start(
    conn: psycopg.Connection,
    digest: bytes,
    user: User,
    now: datetime,
    user_agent: str,
    address: str,
    lifetimes: Lifetimes,
) -> None:
    """Store a new session of the user, and drop the user's sessions that can no longer live."""
    with conn.cursor() as cur:
        cur.execute(
            f"""DELETE FROM web_sessions s USING users u
                WHERE s.user_id = %(user)s AND u.id = s.user_id AND NOT ({LIVE})""",
            {"user": user.id, **lifetimes.bounds(now)},
        )
        cur.execute(
            """INSERT INTO web_sessions
                   (digest, user_id, epoch, created_at, last_seen_at, user_agent, address)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (digest, user.id, user.session_epoch, now, now, user_agent[:USER_AGENT_CHARS], address),
        )


def live_user(
    conn: psycopg.Connection, digest: bytes, now: datetime, lifetimes: Lifetimes
) -> tuple[User, int] | None:
    """The user of a live session and the session's id, noting the use; None when it is not
    live (ended, expired, or from before the user's epoch)."""
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT s.id, s.last_seen_at, {_qualified(USER_COLUMNS)}
                FROM web_sessions s JOIN users u ON u.id = s.user_id
                WHERE s.digest = %(digest)s AND {LIVE}""",
            {"digest": digest, **lifetimes.bounds(now)},
        )
        row = cur.fetchone()
        if row is None:
            return None
        session_id, last_seen, *user_columns = row
        if now - last_seen >= TOUCH_EVERY:
            cur.execute(
                "UPDATE web_sessions SET last_seen_at = %s WHERE id = %s", (now, session_id)
            )
    return User(*user_columns), int(session_id)


def _qualified(columns: str) -> str:
    return ", ".join(f"u.{name.strip()}" for name in columns.split(","))


def end(conn: psycopg.Connection, digest: bytes) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM web_sessions WHERE digest = %s", (digest,))


def end_one(conn: psycopg.Connection, user_id: int, session_id: int) -> bool:
    """End one of the user's own sessions; False when the user has no such session."""
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM web_sessions WHERE id = %s AND user_id = %s RETURNING id",
            (session_id, user_id),
        )
        return cur.fetchone() is not None


def live_for_user(
    conn: psycopg.Connection, user: User, now: datetime, lifetimes: Lifetimes
) -> list[WebSession]:
    """The user's live sessions, the most recently used first."""
    with conn.cursor(row_factory=class_row(WebSession)) as cur:
        cur.execute(
            f"""SELECT s.id, s.created_at, s.last_seen_at, s.user_agent, s.address
                FROM web_sessions s JOIN users u ON u.id = s.user_id
                WHERE s.user_id = %(user)s AND {LIVE}
                ORDER BY s.last_seen_at DESC, s.id DESC""",
            {"user": user.id, **lifetimes.bounds(now)},
        )
        return cur.fetchall()
