"""Accounts: passwords (argon2), one-time passwords, the first admin, API token strings and
role ranks. The rules the web, the API, the CLI and the benchmarks share; the web's sessions,
CSRF and request checks are tracker.web.auth."""

import functools
import hashlib
import secrets

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tracker.storage import users
from tracker.storage.users import User

MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "rt_"  # noqa: S105 (makes a leaked token recognisable to secret scanners)
TOKEN_BYTES = 32
# Weakest first: a token may not be scoped above its user, and never acts above them.
ROLE_RANK = {"viewer": 0, "analyst": 1, "admin": 2}

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def one_time_password() -> str:
    return secrets.token_urlsafe(18)


@functools.cache
def _dummy_hash() -> str:
    # Hashed lazily, not at import, and only once: it costs as much as a real hash.
    return hash_password(secrets.token_urlsafe(16))


def authenticate(conn: psycopg.Connection, email: str, password: str) -> User | None:
    """The user with this email and password (disabled ones too: the caller refuses them)."""
    # PostgreSQL text cannot hold NUL; no stored email contains one.
    user = None if "\x00" in email else users.get_by_email(conn, email)
    if user is None:
        # Verify anyway so an unknown email takes as long as a wrong password (no enumeration).
        verify_password(_dummy_hash(), password)
        return None
    return user if verify_password(user.password_hash, password) else None


def ensure_admin(conn: psycopg.Connection, email: str = "admin@localhost") -> str | None:
    """Create the first admin when there are no users; returns its one-time password, else None.

    The admin must change the password at first login. The caller commits."""
    if users.count(conn) > 0:
        return None
    password = one_time_password()
    users.create(conn, email, hash_password(password), "admin", must_change_password=True)
    return password


WRONG_CURRENT_PASSWORD = "The current password is wrong."  # noqa: S105 - a message


def password_change_problem(user: User, current: str, new: str, repeat: str) -> str | None:
    """What is wrong with a password change form, in words for the user; None when it is fine.
    A wrong current password is WRONG_CURRENT_PASSWORD (the caller counts it as a failure)."""
    if not verify_password(user.password_hash, current):
        return WRONG_CURRENT_PASSWORD
    if len(new) < MIN_PASSWORD_LENGTH:
        return f"The new password must have at least {MIN_PASSWORD_LENGTH} characters."
    if new != repeat:
        return "The two new passwords differ."
    if new == current:
        # Keeping the printed one-time password would defeat the forced change.
        return "The new password must differ from the current one."
    return None


def role_within(role: str, ceiling: str) -> bool:
    return ROLE_RANK[role] <= ROLE_RANK[ceiling]


def weaker_role(a: str, b: str) -> str:
    return a if role_within(a, b) else b


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
