"""Sessions, API tokens on requests, CSRF and role checks for the web UI and API (the account
rules they rest on, passwords, tokens and roles, are tracker.usecases.accounts)."""

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NoReturn

from fastapi import HTTPException, Request
from psycopg_pool import ConnectionPool
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from tracker.domain import ROLES
from tracker.storage import api_tokens, users, web_sessions
from tracker.storage.users import User
from tracker.usecases import accounts
from tracker.web import throttle

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
PASSWORD_PATH = "/account/password"  # noqa: S105 (a URL path, not a secret)
LOGOUT_EVERYWHERE_PATH = "/account/logout-everywhere"
# Pages a user who still has to replace a one-time password may use.
ACCOUNT_PATHS = frozenset({PASSWORD_PATH, LOGOUT_PATH, LOGOUT_EVERYWHERE_PATH})
# The cookie's random session id; its sha256 finds the session's row (storage/web_sessions.py).
SESSION_ID = "sid"
SESSION_ID_BYTES = 32
SESSION_CSRF = "csrf_token"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# One-click unsubscribe (RFC 8058) comes from mail clients without a session; its signed token
# is what authorises it (tracker.web.unsubscribe).
CSRF_EXEMPT_PREFIXES = ("/unsubscribe/",)


class RedirectTo(Exception):
    """Raised by dependencies to send a browser elsewhere (303), e.g. to the login page."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class SessionCookies:
    """Signed session cookies: HttpOnly, SameSite=Lax, and Secure over HTTPS.

    Starlette's SessionMiddleware fixes the Secure flag when it is built, so this keeps one
    of each and picks per request: Secure when the public URL is https (a TLS proxy in front)
    or the request itself came over HTTPS."""

    def __init__(self, app: ASGIApp, secret_key: str, max_age: int, always_secure: bool) -> None:
        self.plain, self.secure = (
            SessionMiddleware(
                app, secret_key=secret_key, max_age=max_age, same_site="lax", https_only=secure
            )
            for secure in (False, True)
        )
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        over_tls = scope.get("scheme") in ("https", "wss")
        chosen = self.secure if self.always_secure or over_tls else self.plain
        await chosen(scope, receive, send)


def start_session(request: Request, user: User) -> None:
    """Begin a session of the user: a new row, and a cookie that names only its random id."""
    # A fresh session (and CSRF token) at login defeats session fixation.
    end_session(request)
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    with get_pool(request).connection() as conn:
        web_sessions.start(
            conn,
            _session_digest(session_id),
            user,
            now(request),
            request.headers.get("user-agent", ""),
            throttle.client_address(request),
            session_lifetimes(request),
        )
    request.session[SESSION_ID] = session_id
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def end_session(request: Request) -> None:
    """Log this browser out: its row goes, so a copy of the cookie stops working too."""
    session_id = request.session.get(SESSION_ID)
    if isinstance(session_id, str):
        with get_pool(request).connection() as conn:
            web_sessions.end(conn, _session_digest(session_id))
    request.session.clear()


def _session_digest(session_id: str) -> bytes:
    # Only the digest is stored: a read of the table gives no cookie to replay.
    return hashlib.sha256(session_id.encode()).digest()


def session_lifetimes(request: Request) -> web_sessions.Lifetimes:
    lifetimes: web_sessions.Lifetimes = request.app.state.session_lifetimes
    return lifetimes


def csrf_token(request: Request) -> str:
    """The session's synchroniser token, created on first use (the login form needs one too)."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: every unsafe request must echo the session's token.

    A request with a valid bearer token is authenticated by that token alone (never the
    session), and no other site can make a browser send one, so it needs no CSRF token. Any
    other bearer header is refused here: a made-up one must not carry a session's request
    (logout, login) past this check."""
    if request.method in SAFE_METHODS or request.url.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    token = bearer_token(request)
    if token is not None:
        if token_user(request, token) is None:
            raise _invalid_token()
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


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header (the only place one is accepted)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def get_pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


def get_read_pool(request: Request) -> ConnectionPool:
    """TRACKER_DATABASE_READ_URL's pool (the primary's without one), for read-only handlers."""
    pool: ConnectionPool = request.app.state.read_pool
    return pool


def now(request: Request) -> datetime:
    """The app's clock (tests replace app.state.clock to move time on without sleeping)."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock else datetime.now(UTC)


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


def current_user(request: Request) -> User | None:
    """The session's user while the session lives (not ended, idle or too old, and not from
    before the user's session epoch), unless the user is disabled. The id of the session is
    left in request.state.session_id (the account page marks it)."""
    session_id = request.session.get(SESSION_ID)
    if not isinstance(session_id, str):
        return None
    with get_pool(request).connection() as conn:
        # Re-read on every request so a changed role or a deleted account takes effect at once.
        found = web_sessions.live_user(
            conn, _session_digest(session_id), now(request), session_lifetimes(request)
        )
    if found is None or found[0].disabled:
        return None
    request.state.session_id = found[1]
    return found[0]


def token_user(request: Request, token: str) -> User | None:
    """The user a live token acts for, with the token's role (never above the user's own).
    Looked up once per request (the CSRF check and the route's role both ask)."""
    if not hasattr(request.state, "token_user"):
        request.state.token_user = _token_user(request, token)
    found: User | None = request.state.token_user
    return found


def _token_user(request: Request, token: str) -> User | None:
    with get_pool(request).connection() as conn:
        found = api_tokens.find_active(conn, accounts.token_digest(token))
        user = users.get(conn, found.user_id) if found else None
        if found is None or user is None or user.disabled:
            return None
        api_tokens.touch(conn, found.id, now(request))
    # No password is involved, so a pending one-time password does not hold a token back.
    role = accounts.weaker_role(found.role, user.role)
    return dataclasses.replace(user, role=role, must_change_password=False)


class RoleDependency:
    """The dependency `require_role` returns; `roles` lets tests read each route's roles."""

    def __init__(self, roles: frozenset[str]) -> None:
        unknown = roles - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"unknown roles {sorted(unknown)}")
        self.roles = roles

    def __call__(self, request: Request) -> User:
        token = bearer_token(request)
        if token is not None:
            user = token_user(request, token)
            if user is None:
                raise _invalid_token()
        else:
            user = _session_user(request)
        if user.role not in self.roles:
            raise HTTPException(status_code=403, detail="Your role may not do this.")
        return user


def _invalid_token() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail="This API token is not valid.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _session_user(request: Request) -> User:
    user = current_user(request)
    if user is None:
        end_session(request)
        _refuse_anonymous(request)
    if user.must_change_password and request.url.path not in ACCOUNT_PATHS:
        raise RedirectTo(PASSWORD_PATH)
    return user


def require_role(*roles: str) -> Callable[[Request], User]:
    """Dependency: the logged-in user (session or API token), if their role is one of `roles`.

    Anonymous browsers go to the login page (303), other clients get 401; a user who still has
    to change the one-time password is sent to do that first; a weaker role gets 403."""
    return RoleDependency(frozenset(roles))


def _refuse_anonymous(request: Request) -> NoReturn:
    if wants_html(request):
        raise RedirectTo(LOGIN_PATH)
    raise HTTPException(status_code=401, detail="Log in first.")
