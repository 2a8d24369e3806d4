"""Pages: login (throttled), logout, password, the review queue, pairs. No SQL."""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, get_args

import jinja2
import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool
from pydantic import AfterValidator
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracker import accounts, metrics
from tracker.domain import FEED_KINDS, LABELS, ROLES, PairStatus
from tracker.redact import redact_optional
from tracker.storage import audit, labels, pairs, reviews
from tracker.storage.pairs import PairView
from tracker.storage.users import User
from tracker.web import auth, throttle
from tracker.web.review_filters import filter_query, highlight, review_filter

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAIR_STATUSES: tuple[str, ...] = get_args(PairStatus)
# Views of the pairs confirmed without review (TRACKER_PAIR_AUTOCONFIRM_THRESHOLD).
CHECKS = ("auto", "spot-check")
SPOT_CHECK_SIZE = 10
DECIDERS = ("analyst", "admin")
DECISIONS = ("confirm", "reject", "skip")
MAX_VIEW_NAME = 100
OUTCOME_STATUS = {"missing": 404, "claimed": 409, "decided": 409}
OUTCOME_TEXT = {
    "missing": "There is no such pair.",
    "claimed": "Another analyst is reviewing this pair right now.",
    "decided": "This pair has already been decided.",
}
DONE_WORDS = {"confirm": "confirmed", "reject": "rejected", "skip": "skipped"}
# The one-line notice after a plain-form action (a decision, undo, follow), shown once by the
# next queue, pairs or pair page.
SESSION_NOTICE = "queue_notice"
MAX_REASON_CHARS = 1000
MAX_BIGINT = 2**63 - 1

AnyUser = Annotated[User, Depends(auth.require_role(*ROLES))]
Decider = Annotated[User, Depends(auth.require_role(*DECIDERS))]
Pool = Annotated[ConnectionPool, Depends(auth.get_pool)]
# Pages that only read: the read replica when one is configured (a moment behind).
ReadPool = Annotated[ConnectionPool, Depends(auth.get_read_pool)]


def without_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL and no field means one: a form with it would end in a 500.
    return value.replace("\x00", "")


FormText = Annotated[str, Form(), AfterValidator(without_nul)]
FormList = Annotated[list[Annotated[str, AfterValidator(without_nul)]], Form()]

router = APIRouter()


@dataclass(frozen=True)
class Side:
    """One half of a pair as the page shows it (rumour or clarification)."""

    label: str
    title: str
    summary: str
    url: str | None
    feed: str
    kind: str
    seen_at: datetime
    outlets: int | None


def sides(pair: PairView) -> tuple[Side, Side]:
    outlets = pair.story_outlets if pair.story_id is not None else None
    rumour = Side(
        "Rumour",
        pair.rumour_title,
        pair.rumour_summary,
        http_url(pair.rumour_url),
        pair.rumour_feed,
        pair.rumour_kind,
        pair.rumour_seen_at,
        outlets,
    )
    clarification = Side(
        "Clarification",
        pair.clarification_title,
        pair.clarification_summary,
        http_url(pair.clarification_url),
        pair.clarification_feed,
        pair.clarification_kind,
        pair.clarification_seen_at,
        None,
    )
    return rumour, clarification


def http_url(url: str | None) -> str | None:
    # Autoescaping does not stop `javascript:` links; item URLs come from untrusted feeds.
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


def shared_terms(explanation: dict[str, Any]) -> list[str]:
    terms = explanation.get("shared_terms")
    return [str(term) for term in terms] if isinstance(terms, list) else []


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


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(auth.LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", None, email="", error=None)


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
    return see_other(auth.LOGIN_PATH)


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, user: AnyUser, pool: Pool) -> HTMLResponse:
    where, problems = review_filter(request.query_params)
    now = auth.now(request)
    # Showing the queue changes nothing: the page's script claims the pair the analyst is on
    # with a POST (/pairs/{id}/claim), the first one as the page opens.
    with pool.connection() as conn:
        found = reviews.queue(conn, user.id, now, where)
        views_saved = reviews.saved_views(conn, user.id)
    return render(
        request,
        "queue.html",
        user,
        pairs=found,
        where=where,
        problems=problems,
        query=str(request.url.query),
        saved=views_saved,
        me=user.id,
        notice=request.session.pop(SESSION_NOTICE, None),
    )


@router.get("/pairs", response_class=HTMLResponse)
def pair_list(request: Request, user: AnyUser, pool: ReadPool, status: str = "") -> HTMLResponse:
    """All pairs, or one status; `auto`: confirmed automatically and not checked since;
    `spot-check`: today's random sample of those, for an analyst to check."""
    if status and status not in (*PAIR_STATUSES, *CHECKS):
        raise HTTPException(status_code=400, detail=f"Unknown status {status!r}.")
    with pool.connection() as conn:
        if status in CHECKS:
            # One sample a day: the same pairs all day for every analyst, new ones tomorrow.
            seed = auth.now(request).date().isoformat() if status == "spot-check" else None
            limit = SPOT_CHECK_SIZE if seed else 100
            found = pairs.list_pairs(conn, "confirmed", limit, unreviewed=True, sample_seed=seed)
        else:
            found = pairs.list_pairs(conn, status=status or None)
    notice = request.session.pop(SESSION_NOTICE, None)
    return render(
        request,
        "pairs.html",
        user,
        pairs=found,
        status=status,
        queue=False,
        notice=notice,
        checking=status in CHECKS,
    )


@router.post("/pairs/{pair_id}/decision", response_model=None)
def decide(
    request: Request,
    pair_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: Decider,
    pool: Pool,
    decision: FormText = "",
    reason: FormText = "",
    back: FormText = "/",
) -> Response:
    if decision not in DECISIONS:
        raise HTTPException(status_code=400, detail="Choose confirm, reject or skip.")
    note = reason.strip()[:MAX_REASON_CHARS] or None
    # The API's rule too (api_models.DecisionIn): a rejection says why, for the audit trail
    # and for the analysts who later wonder why a pair is not there.
    if decision == "reject" and note is None:
        raise HTTPException(status_code=400, detail="A rejection needs a reason.")
    # The review and its audit entry commit together or not at all.
    with pool.connection() as conn, conn.transaction():
        outcome = reviews.decide(conn, pair_id, user.id, decision, note, auth.now(request))
        if outcome != "ok":
            raise HTTPException(status_code=OUTCOME_STATUS[outcome], detail=OUTCOME_TEXT[outcome])
        audit.record(conn, user.email, f"pair.{decision}", f"pair:{pair_id}", {"reason": note})
    metrics.pair_decided(decision)
    if auth.wants_html(request):
        request.session[SESSION_NOTICE] = f"Pair {pair_id} {DONE_WORDS[decision]}."
    return done(request, back, pair_id=pair_id, decision=decision)


@router.post("/pairs/{pair_id}/claim", response_model=None)
def claim(
    request: Request,
    pair_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: Decider,
    pool: Pool,
    back: FormText = "/",
) -> Response:
    """Hold a pair while working it (our script calls this as the analyst moves to a pair).
    A lease, not a decision: it expires by itself, so it is not written to the audit log."""
    now = auth.now(request)
    with pool.connection() as conn, conn.transaction():
        if not reviews.claim(conn, pair_id, user.id, now):
            outcome = reviews.refusal(conn, pair_id)
            raise HTTPException(status_code=OUTCOME_STATUS[outcome], detail=OUTCOME_TEXT[outcome])
    until = (now + reviews.CLAIM_LEASE).isoformat()
    return done(request, back, pair_id=pair_id, claimed_until=until)


@router.post("/reviews/undo", response_model=None)
def undo(request: Request, user: Decider, pool: Pool, back: FormText = "/") -> Response:
    """Take back this analyst's last action: a confirm, reject, skip or relabel."""
    with pool.connection() as conn, conn.transaction():
        undone = reviews.undo_last(conn, user.id)
        if undone is None:
            raise HTTPException(status_code=409, detail="There is no decision of yours to undo.")
        _audit_undo(conn, user.email, undone)
    message = undo_message(undone)
    request.session[SESSION_NOTICE] = message
    return done(request, back, message=message, **asdict(undone))


def _audit_undo(conn: psycopg.Connection, actor: str, undone: reviews.Undone) -> None:
    details: dict[str, Any]
    if undone.decision == "relabel":
        details = {"label": undone.label, "label_now": undone.label_now}
        audit.record(conn, actor, "item.relabel_undo", f"item:{undone.item_id}", details)
        return
    details = {"decision": undone.decision}
    if undone.decision == "confirm":
        details.update(alerts_withdrawn=undone.alerts_withdrawn, alerts_sent=undone.alerts_sent)
    audit.record(conn, actor, "pair.undo", f"pair:{undone.pair_id}", details)


def undo_message(undone: reviews.Undone) -> str:
    if undone.decision == "relabel":
        now = (
            f"the analysts' label {undone.label_now} stands again"
            if undone.label_now
            else "no analyst label stands for it now"
        )
        return f"Undone: item {undone.item_id} relabelled {undone.label}; {now}."
    message = f"Undone: pair {undone.pair_id} {DONE_WORDS[undone.decision]}."
    if undone.alerts_withdrawn:
        message += f" {_alerts(undone.alerts_withdrawn)} not sent yet withdrawn."
    if undone.alerts_sent:
        message += f" {_alerts(undone.alerts_sent)} already sent could not be taken back."
    return message


def _alerts(n: int) -> str:
    return f"{n} alert{'s' if n != 1 else ''}"


@router.post("/items/{item_id}/label", response_model=None)
def relabel(
    request: Request,
    item_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: Decider,
    pool: Pool,
    label: FormText = "",
    back: FormText = "/",
) -> Response:
    """An analyst's label for an item; training reads it (tracker.storage.labels)."""
    if label not in LABELS:
        raise HTTPException(status_code=400, detail="Choose rumour, clarification or other.")
    with pool.connection() as conn, conn.transaction():
        if not reviews.item_exists(conn, item_id):
            raise HTTPException(status_code=404, detail="There is no such item.")
        labels.add_item_label(conn, item_id, label, user.id)
        audit.record(conn, user.email, "item.relabel", f"item:{item_id}", {"label": label})
    return done(request, back, item_id=item_id, label=label)


@router.post("/views", response_model=None)
def save_view(
    request: Request, user: AnyUser, pool: Pool, name: FormText = "", query: FormText = ""
) -> Response:
    """Save the queue's current filters under a name, for this user only."""
    name = name.strip()[:MAX_VIEW_NAME]
    if not name:
        raise HTTPException(status_code=400, detail="Give the view a name.")
    # Re-encoded from what it parses to: a saved view holds only known filters.
    where, problems = review_filter(QueryParams(query.lstrip("?")))
    if problems:
        raise HTTPException(status_code=400, detail=" ".join(problems))
    clean = filter_query(where)
    with pool.connection() as conn, conn.transaction():
        view_id = reviews.save_view(conn, user.id, name, clean)
        audit.record(conn, user.email, "view.save", f"view:{view_id}", {"query": clean})
    return done(request, "/?" + clean, view_id=view_id)


@router.post("/views/{view_id}/delete", response_model=None)
def delete_view(
    request: Request,
    view_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: AnyUser,
    pool: Pool,
) -> Response:
    with pool.connection() as conn, conn.transaction():
        if not reviews.delete_view(conn, user.id, view_id):
            raise HTTPException(status_code=404, detail="There is no such saved view.")
        audit.record(conn, user.email, "view.delete", f"view:{view_id}")
    return done(request, "/", view_id=view_id)


def done(request: Request, back: str, **result: Any) -> Response:
    """JSON for our script's fetch calls, a redirect back to the page for plain forms."""
    if not auth.wants_html(request):
        return JSONResponse({"ok": True, **result})
    return see_other(local_path(back))


def local_path(back: str) -> str:
    # Only a path on this site: a form field must not turn into an open redirect.
    if back.startswith("/") and not back.startswith(("//", "/\\")) and "\\" not in back:
        return back
    return "/"


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Errors as a page for browsers, as JSON for API clients."""
    if not auth.wants_html(request):
        return await http_exception_handler(request, exc)
    context = {"status": exc.status_code, "message": str(exc.detail), "user": None}
    return templates.TemplateResponse(
        request, "error.html", context, status_code=exc.status_code, headers=exc.headers
    )


async def redirect(request: Request, exc: auth.RedirectTo) -> Response:
    return see_other(exc.location)
