"""The account page: change one's password, see one's sessions and end them."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse

from tracker.storage import audit, users, web_sessions
from tracker.storage.users import User
from tracker.usecases import accounts
from tracker.web import auth, throttle
from tracker.web.deps import SESSION_NOTICE, AnyUser, FormText, Pool, render, see_other
from tracker.web.login_views import logged_out

SESSION_FLASH = "account_flash"
SESSIONS_PATH = "/account/sessions/{session_id}/end"
SessionId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]

router = APIRouter()


def _page(
    request: Request, user: User, status_code: int = 200, error: str | None = None
) -> HTMLResponse:
    with auth.get_pool(request).connection() as conn:
        sessions = web_sessions.live_for_user(
            conn, user, auth.now(request), auth.session_lifetimes(request)
        )
    return render(
        request,
        "password.html",
        user,
        status_code=status_code,
        error=error,
        notice=request.session.pop(SESSION_FLASH, None),
        sessions=sessions,
        this_session=getattr(request.state, "session_id", None),
    )


@router.get(auth.PASSWORD_PATH, response_class=HTMLResponse)
def account(request: Request, user: AnyUser) -> HTMLResponse:
    return _page(request, user)


@router.post(auth.PASSWORD_PATH, response_model=None)
def change_password(
    request: Request,
    user: AnyUser,
    pool: Pool,
    current_password: FormText = "",
    new_password: FormText = "",
    new_password_again: FormText = "",
) -> HTMLResponse | RedirectResponse:
    now = auth.now(request)
    address = throttle.client_address(request)
    with pool.connection() as conn:
        # Throttled as logins are, on the same counts: the current password is not even
        # checked while the account or address is locked.
        locked = throttle.refused_until(conn, user.email, address, now)
        if locked is not None:
            return _password_refused(request, user, locked, now)
        problem = accounts.password_change_problem(
            user, current_password, new_password, new_password_again
        )
        if problem == accounts.WRONG_CURRENT_PASSWORD:
            with conn.transaction():
                locked = throttle.record_failure(conn, user.email, address, now)
            if locked is not None:
                return _password_refused(request, user, locked, now)
        if problem:
            return _page(request, user, status_code=400, error=problem)
        # The new epoch ends every other session; this one is started again with it.
        with conn.transaction():
            updated = users.set_password(conn, user.id, accounts.hash_password(new_password))
            audit.record(conn, user.email, "user.password_changed", f"user:{user.id}")
        throttle.record_success(conn, user.email)
    auth.start_session(request, updated)
    # Set after the new session begins (starting one clears the old session's values).
    request.session[SESSION_NOTICE] = "Your password is changed; your other sessions have ended."
    return see_other("/")


def _password_refused(request: Request, user: User, until: datetime, now: datetime) -> HTMLResponse:
    error = throttle.refusal_message(until, now, "wrong passwords")
    page = _page(request, user, status_code=429, error=error)
    page.headers["Retry-After"] = str(throttle.retry_after_s(until, now))
    return page


@router.post(SESSIONS_PATH)
def end_session(
    request: Request, user: AnyUser, pool: Pool, session_id: SessionId
) -> RedirectResponse:
    """End one of the user's own sessions (a lost phone, a shared computer)."""
    with pool.connection() as conn, conn.transaction():
        if not web_sessions.end_one(conn, user.id, session_id):
            raise HTTPException(status_code=404, detail="You have no such session.")
        audit.record(conn, user.email, "user.session_ended", f"user:{user.id}")
    if session_id == getattr(request.state, "session_id", None):
        request.session.clear()
        logged_out(request, "This session has ended: you are logged out.")
        return see_other(auth.LOGIN_PATH)
    request.session[SESSION_FLASH] = "The session has ended."
    return see_other(auth.PASSWORD_PATH)


@router.post(auth.LOGOUT_EVERYWHERE_PATH)
def logout_everywhere(request: Request, user: AnyUser, pool: Pool) -> RedirectResponse:
    """End every session of this user, on every device, this one included."""
    with pool.connection() as conn, conn.transaction():
        users.end_sessions(conn, user.id)
        audit.record(conn, user.email, "user.sessions_ended", f"user:{user.id}")
    auth.end_session(request)
    logged_out(request, "Every session of this account has ended, this one too.")
    return see_other(auth.LOGIN_PATH)
