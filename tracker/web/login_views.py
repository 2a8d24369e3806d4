"""Logging in (throttled by account and address) and out."""

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tracker.usecases import accounts
from tracker.web import auth, throttle
from tracker.web.deps import AnyUser, FormText, Pool, render, see_other

# What the login page says once after a logout ("You are logged out.").
LOGIN_NOTICE = "login_notice"

router = APIRouter()


@router.get(auth.LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    notice = request.session.pop(LOGIN_NOTICE, None)
    return render(request, "login.html", None, email="", error=None, notice=notice)


@router.post(auth.LOGIN_PATH, response_model=None)
def login(
    request: Request, pool: Pool, email: FormText = "", password: FormText = ""
) -> HTMLResponse | RedirectResponse:
    now = auth.now(request)
    address = throttle.client_address(request)
    with pool.connection() as conn:
        # A locked account or address is refused before the password is even looked at.
        locked = throttle.refused_until(conn, email, address, now)
        if locked is not None:
            return _login_refused(request, email, locked, now)
        user = accounts.authenticate(conn, email, password)
        if user is None:
            with conn.transaction():
                locked = throttle.record_failure(conn, email, address, now)
            if locked is not None:
                return _login_refused(request, email, locked, now)
            error = "Wrong email or password."
            return render(request, "login.html", None, status_code=401, email=email, error=error)
        if user.disabled:
            error = "This account is disabled. Ask an administrator."
            return render(request, "login.html", None, status_code=403, email=email, error=error)
        throttle.record_success(conn, email)
    auth.start_session(request, user)
    return see_other(auth.PASSWORD_PATH if user.must_change_password else "/")


def _login_refused(request: Request, email: str, until: datetime, now: datetime) -> HTMLResponse:
    # The same words whether or not the account exists: unknown emails are locked the same way.
    page = render(
        request,
        "login.html",
        None,
        status_code=429,
        email=email,
        error=throttle.refusal_message(until, now),
    )
    page.headers["Retry-After"] = str(throttle.retry_after_s(until, now))
    return page


@router.post(auth.LOGOUT_PATH)
def logout(request: Request, user: AnyUser) -> RedirectResponse:
    auth.end_session(request)
    logged_out(request, "You are logged out.")
    return see_other(auth.LOGIN_PATH)


def logged_out(request: Request, message: str) -> None:
    """Say on the login page, once, that the session has ended (set after it is cleared)."""
    request.session[LOGIN_NOTICE] = message
