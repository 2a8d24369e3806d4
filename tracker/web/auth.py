"""Passwords, sessions, CSRF and role checks for the web UI."""

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import NoReturn

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from psycopg_pool import ConnectionPool

from tracker.storage import users
from tracker.storage.users import User

MIN_PASSWORD_LENGTH = 12
LOGIN_PATH = "/login"
PASSWORD_PATH = "/account/password"  # noqa: S105 (a URL path, not a secret)
SESSION_USER = "user_id"
SESSION_CSRF = "csrf_token"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# One-click unsubscribe (RFC 8058) comes from mail clients without a session; its signed token
# is what authorises it (tracker.web.unsubscribe).
CSRF_EXEMPT_PREFIXES = ("/unsubscribe/",)

_hasher = PasswordHasher()


class RedirectTo(Exception):
    """Raised by dependencies to send a browser elsewhere (303), e.g. to the login page."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    # Hashed lazily, not at import, and only once: it costs as much as a real hash.
    return hash_password(secrets.token_urlsafe(16))


def authenticate(conn: psycopg.Connection, email: str, password: str) -> User | None:
    user = users.get_by_email(conn, email)
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
    password = secrets.token_urlsafe(18)
    users.create(conn, email, hash_password(password), "admin", must_change_password=True)
    return password


def password_change_problem(user: User, current: str, new: str, repeat: str) -> str | None:
    """What is wrong with a password change form, in words for the user; None when it is fine."""
    if not verify_password(user.password_hash, current):
        return "The current password is wrong."
    if len(new) < MIN_PASSWORD_LENGTH:
        return f"The new password must have at least {MIN_PASSWORD_LENGTH} characters."
    if new != repeat:
        return "The two new passwords differ."
    if new == current:
        # Keeping the printed one-time password would defeat the forced change.
        return "The new password must differ from the current one."
    return None


def start_session(request: Request, user: User) -> None:
    # A fresh session (and CSRF token) at login defeats session fixation.
    request.session.clear()
    request.session[SESSION_USER] = user.id
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def end_session(request: Request) -> None:
    request.session.clear()


def csrf_token(request: Request) -> str:
    """The session's synchroniser token, created on first use (the login form needs one too)."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: every unsafe request must echo the session's token."""
    if request.method in SAFE_METHODS or request.url.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    sent = request.headers.get(CSRF_HEADER) or await _csrf_form_field(request)
    expected = request.session.get(SESSION_CSRF)
    if not sent or not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(status_code=403, detail="Missing or wrong CSRF token.")


async def _csrf_form_field(request: Request) -> str | None:
    # Starlette caches the parsed form on the request, so the handler's Form() fields still work.
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def get_pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


def current_user(request: Request) -> User | None:
    user_id = request.session.get(SESSION_USER)
    if not isinstance(user_id, int):
        return None
    with get_pool(request).connection() as conn:
        # Re-read on every request so a changed role or a deleted account takes effect at once.
        return users.get(conn, user_id)


def require_role(*roles: str) -> Callable[[Request], User]:
    """Dependency: the logged-in user, if their role is one of `roles`.

    Anonymous browsers go to the login page (303), other clients get 401; a user who still has
    to change the one-time password is sent to do that first; a weaker role gets 403."""

    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            end_session(request)
            _refuse_anonymous(request)
        if user.must_change_password and request.url.path != PASSWORD_PATH:
            raise RedirectTo(PASSWORD_PATH)
        if user.role not in roles:
            raise HTTPException(status_code=403, detail="Your role may not do this.")
        return user

    return dependency


def _refuse_anonymous(request: Request) -> NoReturn:
    if wants_html(request):
        raise RedirectTo(LOGIN_PATH)
    raise HTTPException(status_code=401, detail="Log in first.")
