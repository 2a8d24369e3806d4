"""Users of the web UI: accounts, roles and password hashes (hashing lives in tracker.web)."""

from dataclasses import dataclass, field

import psycopg
from psycopg.rows import class_row

USER_COLUMNS = "id, email, role, must_change_password, password_hash"


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    must_change_password: bool
    # Kept out of repr so a logged or printed user never carries its hash along.
    password_hash: str = field(repr=False)


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


def count(conn: psycopg.Connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users")
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def set_password(conn: psycopg.Connection, user_id: int, password_hash: str) -> None:
    """Store a new hash; the user has now chosen a password, so the forced change is done."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE users SET password_hash = %s, must_change_password = false WHERE id = %s",
            (password_hash, user_id),
        )


def admin_emails(conn: psycopg.Connection) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT email FROM users WHERE role = 'admin' ORDER BY id")
        return [row[0] for row in cur.fetchall()]
