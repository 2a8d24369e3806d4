"""The Feeds page: every user sees each feed's health; admins add feeds (by URL or by site,
with discovery through the SSRF-guarded fetch), import and export OPML, poll a feed now,
disable and enable it. The same functions as `tracker feeds ...` (tracker.usecases.feed_admin),
and the same model for a new feed as the API (FeedIn); no SQL. Plain forms, so all of it works
without JavaScript; bad input is a message, never a 500."""

from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg_pool import ConnectionPool

from tracker.config import Settings
from tracker.domain import FEED_KINDS, ROLES, Feed
from tracker.ingest import opml
from tracker.redact import redact_text
from tracker.storage import feeds
from tracker.storage.users import User
from tracker.usecases import feed_admin
from tracker.web import auth, deps

FEEDS_PATH = "/feeds"
# A list of some thousands of feeds is well under a megabyte; more is not an OPML export.
OPML_UPLOAD_MAX_BYTES = 5 * 1024 * 1024
# The upload's request: the file and the multipart form around it (the app's cap is smaller).
OPML_REQUEST_MAX_BYTES = OPML_UPLOAD_MAX_BYTES + 64 * 1024
MAX_SHOWN_PROBLEMS = 100
MAX_URL_CHARS = 2000
MAX_BIGINT = 2**63 - 1
SESSION_FLASH = "feeds_flash"

AnyUser = Annotated[User, Depends(auth.require_role(*ROLES))]
Admin = Annotated[User, Depends(auth.require_role("admin"))]
Pool = deps.Pool
ReadPool = deps.ReadPool
FeedId = Annotated[int, PathParam(ge=1, le=MAX_BIGINT)]
FormText = deps.FormText

router = APIRouter()


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(app_settings)]


@dataclass(frozen=True)
class AddForm:
    """The add form as typed, shown again when it has a problem."""

    url: str = ""
    discover: bool = False
    kind: str = "other"
    title: str = ""
    language: str = ""
    tags: str = ""


def feed_in(form: AddForm) -> feed_admin.FeedIn:
    """The API's model for what the form asks; FeedInputError when a field is invalid."""
    return feed_admin.feed_in(
        {
            "url": form.url,
            "discover": form.discover,
            "kind": form.kind,
            # The page has always cut a long title rather than refuse it.
            "title": form.title.strip()[: feed_admin.MAX_TITLE_CHARS] or None,
            "language": form.language or None,
            # One text field on the page; the API takes a list.
            "tags": list(opml.split_tags(form.tags)),
        }
    )


def flash(request: Request, message: str) -> None:
    request.session[SESSION_FLASH] = message


def page(
    request: Request,
    user: User,
    pool: ConnectionPool,
    status_code: int = 200,
    form: AddForm | None = None,
    error: str | None = None,
    report: feed_admin.ImportReport | None = None,
    import_kind: str = "other",
) -> HTMLResponse:
    with pool.connection() as conn:
        found = feeds.list_all(conn)
    return deps.render(
        request,
        "feeds.html",
        user,
        status_code=status_code,
        feeds=found,
        is_admin=user.role == "admin",
        form=form or AddForm(),
        error=error,
        report=report,
        import_kind=import_kind,
        max_problems=MAX_SHOWN_PROBLEMS,
        notice=request.session.pop(SESSION_FLASH, None),
    )


@router.get(FEEDS_PATH, response_class=HTMLResponse)
def feed_health(request: Request, user: AnyUser, pool: ReadPool) -> HTMLResponse:
    return page(request, user, pool)


@router.post(FEEDS_PATH, response_model=None)
def add_feed(
    request: Request,
    user: Admin,
    pool: Pool,
    settings: AppSettings,
    url: FormText = "",
    discover: FormText = "",
    kind: FormText = "other",
    title: FormText = "",
    language: FormText = "",
    tags: FormText = "",
) -> HTMLResponse | RedirectResponse:
    form = AddForm(url.strip()[:MAX_URL_CHARS], discover != "", kind, title, language, tags)
    try:
        # The fields are checked before discovery fetches anything.
        new = feed_admin.new_feed_from(feed_in(form), settings)
        found = feed_admin.feed_url(form.url, form.discover, settings)
        new = replace(new, url=found.url)
        with pool.connection() as conn, conn.transaction():
            feed, created = feed_admin.add(conn, new, settings, user.email)
    except feed_admin.FeedInputError as exc:
        return page(request, user, pool, status_code=400, form=form, error=str(exc))
    others = [c for c in found.candidates if c != feed.url]
    shown = redact_text(feed.url)
    message = f"Feed {feed.id} {'added' if created else 'was already registered'}: {shown}."
    if others:
        message += f" The site also offers: {redact_text(', '.join(others))}."
    flash(request, message)
    return deps.see_other(FEEDS_PATH)


def _edit_page(
    request: Request, user: User, feed: Feed, form: AddForm, status_code: int = 200, error: str = ""
) -> HTMLResponse:
    return deps.render(
        request, "feed_edit.html", user, status_code=status_code, feed=feed, form=form, error=error
    )


def _found(pool: ConnectionPool, feed_id: int) -> Feed:
    with pool.connection() as conn:
        feed = feeds.get(conn, feed_id)
    if feed is None:
        raise HTTPException(404, "There is no such feed.")
    return feed


@router.get(FEEDS_PATH + "/{feed_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, feed_id: FeedId, user: Admin, pool: Pool) -> HTMLResponse:
    """The one place a feed's URL is shown whole, credentials included: to an admin."""
    feed = _found(pool, feed_id)
    form = AddForm(
        feed.url, False, feed.kind, feed.title or "", feed.language or "", ", ".join(feed.tags)
    )
    return _edit_page(request, user, feed, form)


@router.post(FEEDS_PATH + "/{feed_id}/edit", response_model=None)
def edit_feed(
    request: Request,
    feed_id: FeedId,
    user: Admin,
    pool: Pool,
    settings: AppSettings,
    url: FormText = "",
    kind: FormText = "other",
    title: FormText = "",
    language: FormText = "",
    tags: FormText = "",
) -> HTMLResponse | RedirectResponse:
    feed = _found(pool, feed_id)
    form = AddForm(url.strip()[:MAX_URL_CHARS], False, kind, title, language, tags)
    try:
        changed = feed_admin.new_feed_from(feed_in(form), settings)
        feed_admin.feed_url(form.url, False, settings)
        with pool.connection() as conn, conn.transaction():
            if not feed_admin.edit(conn, feed_id, changed, settings, user.email):
                raise HTTPException(404, "There is no such feed.")
    except feed_admin.FeedInputError as exc:
        return _edit_page(request, user, feed, form, status_code=400, error=str(exc))
    flash(request, f"Feed {feed_id} saved.")
    return deps.see_other(FEEDS_PATH)


@router.post(
    FEEDS_PATH + "/import", response_class=HTMLResponse, max_body_size=OPML_REQUEST_MAX_BYTES
)
def import_opml(
    request: Request,
    user: Admin,
    pool: Pool,
    settings: AppSettings,
    file: Annotated[UploadFile | None, File()] = None,
    kind: FormText = "other",
) -> HTMLResponse:
    """Register every feed of an uploaded OPML file; a malformed file adds nothing."""
    if kind not in FEED_KINDS:
        return page(request, user, pool, 400, error=f"Unknown feed kind {kind!r}.")
    data = file.file.read(OPML_UPLOAD_MAX_BYTES + 1) if file is not None else b""
    if not data:
        error = "Choose an OPML file to import."
        return page(request, user, pool, 400, error=error, import_kind=kind)
    source = f"upload:{(file.filename if file else None) or 'opml'}"[:200]
    try:
        with pool.connection() as conn, conn.transaction():
            report = feed_admin.import_opml(
                conn, data, kind, settings, user.email, source, OPML_UPLOAD_MAX_BYTES
            )
    except opml.OpmlError as exc:
        # A browser never fills a file field in again: the kind chosen is kept.
        error = f"Nothing imported: {exc}. Choose the file again."
        return page(request, user, pool, 400, error=error, import_kind=kind)
    return page(request, user, pool, report=report)


@router.get(FEEDS_PATH + "/export.opml")
def export_opml(user: Admin, pool: Pool) -> Response:
    with pool.connection() as conn:
        data, _ = feed_admin.export_opml(conn)
    headers = {"Content-Disposition": 'attachment; filename="feeds.opml"'}
    return Response(data, media_type="text/x-opml; charset=utf-8", headers=headers)


@router.post(FEEDS_PATH + "/{feed_id}/poll")
def poll_now(request: Request, feed_id: FeedId, user: Admin, pool: Pool) -> RedirectResponse:
    with pool.connection() as conn, conn.transaction():
        if not feed_admin.poll_now(conn, feed_id, user.email):
            raise HTTPException(404, "There is no such enabled feed.")
    flash(request, f"Feed {feed_id} is due now: the next dispatch polls it.")
    return deps.see_other(FEEDS_PATH)


def _set_enabled(
    request: Request, feed_id: int, enabled: bool, user: User, pool: ConnectionPool
) -> RedirectResponse:
    with pool.connection() as conn, conn.transaction():
        if not feed_admin.set_enabled(conn, feed_id, enabled, user.email):
            raise HTTPException(404, "There is no such feed.")
    flash(request, f"Feed {feed_id} {'enabled: it is polled now' if enabled else 'disabled'}.")
    return deps.see_other(FEEDS_PATH)


@router.post(FEEDS_PATH + "/{feed_id}/disable")
def disable(request: Request, feed_id: FeedId, user: Admin, pool: Pool) -> RedirectResponse:
    return _set_enabled(request, feed_id, False, user, pool)


@router.post(FEEDS_PATH + "/{feed_id}/enable")
def enable(request: Request, feed_id: FeedId, user: Admin, pool: Pool) -> RedirectResponse:
    return _set_enabled(request, feed_id, True, user, pool)
