"""API tokens: stored as a sha256 digest only, scoped to a role, revocable."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row

COLUMNS = "t.id, t.user_id, u.email, t.name, t.role, t.created_at, t.last_used_at, t.revoked_at"
# Recording every use would turn each API read into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiToken:
    id: int
    user_id: int
    email: str
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def create(conn: psycopg.Connection, user_id: int, name: str, role: str, digest: bytes) -> int:
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO api_tokens (user_id, name, role, token_hash)
               VALUES (%s, %s, %s, %s) RETURNING id""",
            (user_id, name, role, digest),
        )
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def find_active(conn: psycopg.Connection, digest: bytes) -> ApiToken | None:
    """The unrevoked token with this digest (its user may still be disabled: the caller checks)."""
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        cur.execute(
            f"""SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
                WHERE t.token_hash = %s AND t.revoked_at IS NULL""",
            (digest,),
        )
        return cur.fetchone()


def touch(conn: psycopg.Connection, token_id: int, now: datetime) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE api_tokens SET last_used_at = %s
               WHERE id = %s AND (last_used_at IS NULL OR last_used_at < %s)""",
            (now, token_id, now - LAST_USED_PRECISION),
        )


def listing(conn: psycopg.Connection, user_id: int | None = None) -> list[ApiToken]:
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        cur.execute(
            f"""SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
                WHERE %(user)s::bigint IS NULL OR t.user_id = %(user)s ORDER BY t.id""",
            {"user": user_id},
        )
        return cur.fetchall()


def get(conn: psycopg.Connection, token_id: int) -> ApiToken | None:
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        cur.execute(
            f"""SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
                WHERE t.id = %s""",
            (token_id,),
        )
        return cur.fetchone()


def revoke(conn: psycopg.Connection, token_id: int) -> bool:
    """Revoke a token; False when there is no such unrevoked token."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
            (token_id,),
        )
        return cur.rowcount == 1
