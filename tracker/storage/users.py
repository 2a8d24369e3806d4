"""Users of the web UI: accounts, roles, password hashes and session epochs.

Hashing lives in tracker.web.auth. Every change that should end a user's sessions (password,
role, disabling, "log out everywhere") bumps `session_epoch`, which each session carries, and
deletes the user's rows of `web_sessions`."""

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.rows import class_row

USER_COLUMNS = (
    "id, email, role, must_change_password, password_hash, disabled_at, session_epoch, created_at"
)
# Appended to every UPDATE that should end the user's sessions.
BUMP_EPOCH = "session_epoch = session_epoch + 1"


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    must_change_password: bool
    # Kept out of repr so a logged or printed user never carries its hash along.
    password_hash: str = field(repr=False)
    disabled_at: datetime | None = None
    session_epoch: int = 0
    created_at: datetime | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


def normalise_email(email: str) -> str:
    # The unique index is case-sensitive; one canonical form keeps "Ana@X" and "ana@x" one account.
    return email.strip().lower()


def create(
    conn: psycopg.Connection,
    email: str,
    password_hash: str,
    role: str,
    must_change_password: bool = False,
) -> User:
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(
            f"""INSERT INTO users (email, password_hash, role, must_change_password)
                VALUES (%s, %s, %s, %s) RETURNING {USER_COLUMNS}""",
            (normalise_email(email), password_hash, role, must_change_password),
        )
        created = cur.fetchone()
        assert created is not None
        return created


def get_by_email(conn: psycopg.Connection, email: str) -> User | None:
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(f"SELECT {USER_COLUMNS} FROM users WHERE email = %s", (normalise_email(email),))
        return cur.fetchone()


def get(conn: psycopg.Connection, user_id: int) -> User | None:
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        return cur.fetchone()


def list_all(conn: psycopg.Connection) -> list[User]:
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY id")
        return cur.fetchall()


def count(conn: psycopg.Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users")
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def _update(conn: psycopg.Connection, user_id: int, assignments: str, *params: object) -> User:
    # `assignments` is always one of this module's literal SET clauses, never input.
    clauses = ", ".join(part for part in (assignments, BUMP_EPOCH) if part)
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(
            f"UPDATE users SET {clauses} WHERE id = %s RETURNING {USER_COLUMNS}",
            (*params, user_id),
        )
        updated = cur.fetchone()
        if updated is None:
            raise LookupError(f"no user {user_id}")
        # The new epoch already ends them; their rows would only linger.
        cur.execute("DELETE FROM web_sessions WHERE user_id = %s", (user_id,))
        return updated


def set_password(conn: psycopg.Connection, user_id: int, password_hash: str) -> User:
    """Store the user's own new password: the forced change is done; other sessions end."""
    return _update(conn, user_id, "password_hash = %s, must_change_password = false", password_hash)


def reset_password(conn: psycopg.Connection, user_id: int, password_hash: str) -> User:
    """Store a one-time password set by an admin: it must be changed at the next login."""
    return _update(conn, user_id, "password_hash = %s, must_change_password = true", password_hash)


def set_role(conn: psycopg.Connection, user_id: int, role: str) -> User:
    return _update(conn, user_id, "role = %s", role)


def set_disabled(conn: psycopg.Connection, user_id: int, disabled: bool) -> User:
    # Keep the first disabling time when disabled twice.
    clause = "disabled_at = coalesce(disabled_at, now())" if disabled else "disabled_at = NULL"
    return _update(conn, user_id, clause)


def end_sessions(conn: psycopg.Connection, user_id: int) -> User:
    """Log the user out everywhere: every session issued before now stops working."""
    return _update(conn, user_id, "")


def admin_emails(conn: psycopg.Connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT email FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id"
        )
        return [row[0] for row in cur.fetchall()]
