"""What every page module shares: who may call a route, the database pools, form fields, the
templates and how a page answers (a rendered page, a redirect, or JSON for our script)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, get_args

import jinja2
from fastapi import Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool
from pydantic import AfterValidator

from tracker.domain import FEED_KINDS, LABELS, ROLES, PairStatus
from tracker.redact import redact_optional
from tracker.storage.users import User
from tracker.usecases.refused import Refused
from tracker.web import auth
from tracker.web.pair_display import http_url, shared_terms, sides
from tracker.web.review_filters import highlight

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAIR_STATUSES: tuple[str, ...] = get_args(PairStatus)
DECIDERS = ("analyst", "admin")
# The one-line notice after a plain-form action (a decision, undo, follow), shown once by the
# next queue, pairs or pair page.
SESSION_NOTICE = "queue_notice"
MAX_BIGINT = 2**63 - 1
# The status of a use case's refusal (tracker.usecases.refused).
REFUSAL_STATUS = {"invalid": 400, "missing": 404, "claimed": 409, "decided": 409}

AnyUser = Annotated[User, Depends(auth.require_role(*ROLES))]
Decider = Annotated[User, Depends(auth.require_role(*DECIDERS))]
Pool = Annotated[ConnectionPool, Depends(auth.get_pool)]
# Pages that only read: the read replica when one is configured (a moment behind).
ReadPool = Annotated[ConnectionPool, Depends(auth.get_read_pool)]


@contextmanager
def refusals_as_http() -> Iterator[None]:
    """A use case's refusal as the error the pages and the API answer with."""
    try:
        yield
    except Refused as refused:
        raise HTTPException(REFUSAL_STATUS[refused.refusal], str(refused)) from None


def without_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL and no field means one: a form with it would end in a 500.
    return value.replace("\x00", "")


FormText = Annotated[str, Form(), AfterValidator(without_nul)]
FormList = Annotated[list[Annotated[str, AfterValidator(without_nul)]], Form()]


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
    # Autoescape everything: titles and summaries are feed text, never marked safe.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    # `private` masks the secrets a feed URL may carry, in a URL or in an error that names one.
    env.filters.update(when=when, score=lambda value: f"{value:.2f}", private=redact_optional)
    env.globals.update(
        sides=sides,
        shared_terms=shared_terms,
        http_url=http_url,
        highlight=highlight,
        feed_kinds=FEED_KINDS,
        labels=LABELS,
        statuses=PAIR_STATUSES,
    )
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request, name: str, user: User | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    context.update(
        user=user,
        csrf_token=auth.csrf_token(request),
        can_decide=user is not None and user.role in DECIDERS,
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def see_other(location: str) -> RedirectResponse:
    # 303 so the browser follows a POST with a GET (no resubmission on reload).
    return RedirectResponse(location, status_code=303)


def done(request: Request, back: str, notice: str | None = None, **result: Any) -> Response:
    """JSON for our script's fetch calls, a redirect back to the page for plain forms, which
    says `notice` there once."""
    if not auth.wants_html(request):
        return JSONResponse({"ok": True, **result})
    if notice is not None:
        request.session[SESSION_NOTICE] = notice
    return see_other(local_path(back))


def local_path(back: str) -> str:
    # Only a path on this site: a form field must not turn into an open redirect.
    if back.startswith("/") and not back.startswith(("//", "/\\")) and "\\" not in back:
        return back
    return "/"
