"""The JSON API under /api/v1: the pages' data, paginated and filterable, plus streamed exports.

Errors are always JSON here (tracker.web.app sends API paths' HTTP errors to FastAPI's JSON
handler), and an anonymous request gets 401, never the login page's redirect. No SQL: reads go
through tracker.storage.browse and .exports, decisions through the web form's own function."""

import base64
import binascii
import csv
import io
import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, replace
from datetime import date, datetime
from functools import partial
from typing import Annotated, Any

import anyio
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.types import Receive, Scope, Send

from tracker.config import Settings
from tracker.domain import (
    LANGUAGE_TAG_PATTERN,
    MAX_LANGUAGE_CHARS,
    ROLES,
    FeedKind,
    Label,
    PairStatus,
    language_code,
    primary_language,
)
from tracker.storage import browse, exports, feeds, models
from tracker.storage.pairs import PairView
from tracker.storage.users import User
from tracker.usecases import feed_admin, model_admin
from tracker.usecases import reviews as review_usecases
from tracker.usecases import stories as story_usecases
from tracker.usecases.feed_admin import FeedIn
from tracker.web import auth
from tracker.web.api_models import (
    MAX_STORY_DECISIONS,
    MAX_STORY_ITEMS,
    AnalystLabelOut,
    ClassificationOut,
    DecisionIn,
    FeedOut,
    ItemDetailOut,
    ItemOut,
    MergeIn,
    ModelOut,
    OutletOut,
    Page,
    PairOut,
    PairSide,
    RollbackIn,
    SplitIn,
    SpreadDayOut,
    StoryClarificationOut,
    StoryDecisionOut,
    StoryOut,
)
from tracker.web.deps import refusals_as_http

PREFIX = "/api/v1"
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
API_VERSION = "1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_BIGINT = 2**63 - 1
CSV_FLUSH_ROWS = 500
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


CHALLENGE = {"WWW-Authenticate": "Bearer"}


class ApiRole(auth.RoleDependency):
    """require_role for API clients: a missing login is 401 JSON, never the login redirect."""

    def __call__(self, request: Request) -> User:
        try:
            return super().__call__(request)
        except auth.RedirectTo as refused:
            if refused.location == auth.PASSWORD_PATH:
                raise HTTPException(403, "Change your one-time password first.") from None
            raise HTTPException(401, "Log in first.", headers=CHALLENGE) from None
        except HTTPException as refused:
            # Every 401 names the scheme that would work (RFC 9110 requires the challenge).
            if refused.status_code == 401 and not refused.headers:
                raise HTTPException(401, refused.detail, headers=CHALLENGE) from None
            raise


Viewer = Annotated[User, Depends(ApiRole(frozenset(ROLES)))]
Decider = Annotated[User, Depends(ApiRole(frozenset({"analyst", "admin"})))]
Admin = Annotated[User, Depends(ApiRole(frozenset({"admin"})))]
Pool = Annotated[ConnectionPool, Depends(auth.get_pool)]
# Read-only lists and exports: the read replica when one is configured.
ReadPool = Annotated[ConnectionPool, Depends(auth.get_read_pool)]
Id = Annotated[int, PathParam(ge=1, le=MAX_BIGINT)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
# A language code as domain.language_code takes it (en, ro-RO, pt_BR), normalised by the route.
Language = Annotated[
    str | None,
    Query(max_length=MAX_LANGUAGE_CHARS, pattern=f"^{LANGUAGE_TAG_PATTERN}$", examples=["ro"]),
]
Cursor = Annotated[str | None, Query(max_length=200)]

router = APIRouter(prefix=PREFIX, tags=["api"])


# --- cursors -----------------------------------------------------------------------------------


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise HTTPException(400, "This cursor is not one the API gave out.")
    return values


def pair_key(cursor: str | None) -> browse.PairKey | None:
    if cursor is None:
        return None
    score, created_at, pair_id = decode_cursor(cursor, 3)
    try:
        return browse.PairKey(float(score), datetime.fromisoformat(created_at), int(pair_id))
    except (TypeError, ValueError):
        raise HTTPException(400, "This cursor is not one the API gave out.") from None


def item_key(cursor: str | None) -> browse.ItemKey | None:
    if cursor is None:
        return None
    seen_at, item_id = decode_cursor(cursor, 2)
    try:
        return browse.ItemKey(datetime.fromisoformat(seen_at), int(item_id))
    except (TypeError, ValueError):
        raise HTTPException(400, "This cursor is not one the API gave out.") from None


# --- pairs -------------------------------------------------------------------------------------


def pair_out(pair: PairView) -> PairOut:
    def side(prefix: str) -> PairSide:
        values = {f: getattr(pair, f"{prefix}_{f}") for f in ("id", "title", "summary", "url")}
        return PairSide(
            **values,
            feed=getattr(pair, f"{prefix}_feed"),
            feed_kind=getattr(pair, f"{prefix}_kind"),
            seen_at=getattr(pair, f"{prefix}_seen_at"),
        )

    return PairOut(
        id=pair.id,
        score=pair.score,
        status=pair.status,
        created_at=pair.created_at,
        explanation=pair.explanation,
        rumour=side("rumour"),
        clarification=side("clarification"),
        story_id=pair.story_id,
        story_outlets=pair.story_outlets if pair.story_id is not None else None,
    )


@router.get("/pairs")
def list_pairs(
    user: Viewer,
    pool: ReadPool,
    status: PairStatus | None = None,
    language: Language = None,
    feed_kind: FeedKind | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PairOut]:
    """Pairs in queue order: best score first, newest first among equals. Language and feed
    kind match either side; since/until bound when the pair was suggested."""
    where = browse.PairFilter(
        status,
        language_code(language),
        feed_kind,
        min_score,
        max_score,
        since,
        until,
    )
    with pool.connection() as conn:
        # One row more than asked tells whether there is a next page.
        found = browse.list_pairs(conn, where, limit + 1, pair_key(cursor))
    page, more = found[:limit], len(found) > limit
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor([last.score, last.created_at.isoformat(), last.id]) if more and last else None
    )
    return Page[PairOut](items=[pair_out(p) for p in page], next_cursor=next_cursor)


@router.get("/pairs/{pair_id}")
def get_pair(pair_id: Id, user: Viewer, pool: ReadPool) -> PairOut:
    with pool.connection() as conn:
        pair = browse.get_pair(conn, pair_id)
    if pair is None:
        raise HTTPException(404, "There is no such pair.")
    return pair_out(pair)


@router.post("/pairs/{pair_id}/decision")
def decide(request: Request, pair_id: Id, body: DecisionIn, user: Decider, pool: Pool) -> PairOut:
    """Confirm or reject a suggested pair (a rejection needs a reason) with the queue's own
    function: another analyst's claim is respected and the decision can be undone."""
    with pool.connection() as conn:
        now = auth.now(request)
        with refusals_as_http():
            review_usecases.decide(conn, pair_id, user, body.decision, body.reason, now, "api")
        pair = browse.get_pair(conn, pair_id)
    assert pair is not None
    return pair_out(pair)


# --- items and stories -------------------------------------------------------------------------


def item_out(item: browse.ItemRow) -> ItemOut:
    return ItemOut(**asdict(item))


@router.get("/items")
def list_items(
    user: Viewer,
    pool: ReadPool,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    label: Label | None = None,
    language: Language = None,
    feed: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None,
    since: datetime | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ItemOut]:
    """Items newest first. `q` is full-text search (web-search syntax: words, "phrases", -not);
    `label` is the item's current classification."""
    if q is not None and "\x00" in q:
        raise HTTPException(400, "The search text may not contain NUL.")
    code = language_code(language)
    # Items match on their language's primary subtag (browse.ItemFilter).
    where = browse.ItemFilter(q, label, primary_language(code) if code else None, feed, since)
    with pool.connection() as conn:
        found = browse.list_items(conn, where, limit + 1, item_key(cursor))
    page, more = found[:limit], len(found) > limit
    last = page[-1] if page else None
    next_cursor = encode_cursor([last.seen_at.isoformat(), last.id]) if more and last else None
    return Page[ItemOut](items=[item_out(i) for i in page], next_cursor=next_cursor)


@router.get("/items/{item_id}")
def get_item(item_id: Id, user: Viewer, pool: ReadPool) -> ItemDetailOut:
    """An item with every model's classification of it and analysts' relabels, oldest first."""
    with pool.connection() as conn:
        item = browse.get_item(conn, item_id)
        if item is None:
            raise HTTPException(404, "There is no such item.")
        history = browse.classification_history(conn, item_id)
        relabels = browse.analyst_labels(conn, item_id)
    return ItemDetailOut(
        **asdict(item),
        classifications=[ClassificationOut(**asdict(c)) for c in history],
        analyst_labels=[AnalystLabelOut(**asdict(label)) for label in relabels],
    )


@router.get("/stories/{story_id}")
def get_story(story_id: Id, user: Viewer, pool: ReadPool) -> StoryOut:
    with pool.connection() as conn:
        story = story_out(conn, story_id)
    if story is None:
        raise HTTPException(404, "There is no such story.")
    return story


def story_out(conn: psycopg.Connection, story_id: int) -> StoryOut | None:
    story = browse.get_story(conn, story_id)
    if story is None:
        return None
    where = browse.ItemFilter(story_id=story_id)
    found = browse.list_items(conn, where, MAX_STORY_ITEMS)
    outlets = browse.story_outlets(conn, story_id)
    spread = browse.story_spread(conn, story_id)
    clarifications = browse.story_clarifications(conn, story_id)
    decisions = browse.story_decisions(conn, story_id, MAX_STORY_DECISIONS)
    return StoryOut(
        id=story.id,
        title=story.title,
        first_seen_at=story.first_seen_at,
        items=[item_out(i) for i in found],
        outlets=[OutletOut(**asdict(o)) for o in outlets],
        spread=[SpreadDayOut(**asdict(d)) for d in spread],
        clarifications=[StoryClarificationOut(**asdict(c)) for c in clarifications],
        decisions=[StoryDecisionOut(**asdict(d)) for d in decisions],
    )


STORY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Merging a story into itself, or a split that moves no or all items."},
    404: {"description": "There is no such story."},
}


@router.post("/stories/{story_id}/merge", responses=STORY_ERRORS)
def merge_story(story_id: Id, body: MergeIn, user: Decider, pool: Pool) -> StoryOut:
    """Merge story `source_id` into this one: its items (and so their pairs) and its followers
    move here, this story's clarifications are suggested for the moved rumours, and the source
    story is deleted. Returns this story as it now is. Audited."""
    with pool.connection() as conn:
        with conn.transaction(), refusals_as_http():
            story_usecases.merge(conn, user, story_id, body.source_id, via="api")
        story = story_out(conn, story_id)
    assert story is not None
    return story


@router.post("/stories/{story_id}/split", responses=STORY_ERRORS)
def split_story(story_id: Id, body: SplitIn, user: Decider, pool: Pool) -> StoryOut:
    """Move `item_ids` out of this story into a new one, named after the earliest of them; the
    story's followers follow the new one too. Returns the new story. Audited."""
    with pool.connection() as conn:
        with conn.transaction(), refusals_as_http():
            new_id = story_usecases.split(conn, user, story_id, body.item_ids, via="api")
        story = story_out(conn, new_id)
    assert story is not None
    return story


# --- feeds and models --------------------------------------------------------------------------


@router.get("/feeds")
def list_feeds(user: Viewer, pool: ReadPool) -> list[FeedOut]:
    """Every feed with its health: status, errors, last and next poll."""
    with pool.connection() as conn:
        found = feeds.list_all(conn)
    return [FeedOut.model_validate(f, from_attributes=True) for f in found]


def feed_out(pool: ConnectionPool, feed_id: int) -> FeedOut:
    with pool.connection() as conn:
        feed = feeds.get(conn, feed_id)
    if feed is None:
        raise HTTPException(404, "There is no such feed.")
    return FeedOut.model_validate(feed, from_attributes=True)


@router.post("/feeds", status_code=201, responses={200: {"description": "Already registered."}})
def add_feed(
    request: Request, body: FeedIn, response: Response, user: Admin, pool: Pool
) -> FeedOut:
    """Register a feed (the feeds page's form): 201 when added, 200 when the URL was already
    registered. With `discover` the URL is a site whose feed is found through the same
    guarded fetch as polling; a site without one is 422 with the reason."""
    settings: Settings = request.app.state.settings
    try:
        new = feed_admin.new_feed_from(body, settings)
        found = feed_admin.feed_url(body.url, body.discover, settings)
        with pool.connection() as conn, conn.transaction():
            feed, created = feed_admin.add(conn, replace(new, url=found.url), settings, user.email)
    except feed_admin.FeedInputError as exc:
        raise HTTPException(422, str(exc)) from None
    if not created:
        response.status_code = 200
    return FeedOut.model_validate(feed, from_attributes=True)


@router.post("/feeds/{feed_id}/poll")
def poll_feed(feed_id: Id, user: Admin, pool: Pool) -> FeedOut:
    """Make an enabled feed due now: the next dispatch polls it."""
    with pool.connection() as conn, conn.transaction():
        if not feed_admin.poll_now(conn, feed_id, user.email):
            raise HTTPException(404, "There is no such enabled feed.")
    return feed_out(pool, feed_id)


@router.post("/feeds/{feed_id}/disable")
def disable_feed(feed_id: Id, user: Admin, pool: Pool) -> FeedOut:
    """Stop polling a feed; its items stay."""
    with pool.connection() as conn, conn.transaction():
        if not feed_admin.set_enabled(conn, feed_id, False, user.email):
            raise HTTPException(404, "There is no such feed.")
    return feed_out(pool, feed_id)


@router.post("/feeds/{feed_id}/enable")
def enable_feed(feed_id: Id, user: Admin, pool: Pool) -> FeedOut:
    """Poll a feed again, now, with its error count reset."""
    with pool.connection() as conn, conn.transaction():
        if not feed_admin.set_enabled(conn, feed_id, True, user.email):
            raise HTTPException(404, "There is no such feed.")
    return feed_out(pool, feed_id)


OPML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/x-opml": {}}, "description": "OPML 2.0; categories are the tags."}
}


@router.get("/feeds/export.opml", response_class=Response, responses=OPML_RESPONSE)
def export_feeds_opml(user: Admin, pool: Pool) -> Response:
    """Every feed as OPML, which `tracker feeds import-opml` and the feeds page read back."""
    with pool.connection() as conn:
        data, _ = feed_admin.export_opml(conn)
    headers = {"Content-Disposition": 'attachment; filename="feeds.opml"'}
    return Response(data, media_type="text/x-opml; charset=utf-8", headers=headers)


def numeric_entries(metadata: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metadata.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


@router.get("/models")
def list_models(user: Admin, pool: Pool) -> list[ModelOut]:
    """Every model version, newest first within each kind, with its metrics."""
    with pool.connection() as conn:
        found = models.list_models(conn)
    return [model_out(m) for m in found]


def model_out(model: models.ModelInfo) -> ModelOut:
    return ModelOut(**asdict(model), metrics=numeric_entries(model.metadata))


@router.post("/models/{model_id}/activate", responses={409: {"description": "Refused."}})
def activate_model(model_id: Id, user: Admin, pool: Pool) -> ModelOut:
    """Make a version the active model of its kind; 409 when it lost its challenge against
    the champion at training time (the champion/challenger rule)."""
    with pool.connection() as conn:
        model = models.info(conn, model_id)
        if model is None:
            raise HTTPException(404, "There is no such model.")
        try:
            model_admin.activate(conn, model.version, user.email)
        except model_admin.ActivationRefused as exc:
            raise HTTPException(409, str(exc)) from None
        activated = models.info(conn, model_id)
    assert activated is not None
    return model_out(activated)


@router.post("/models/rollback", responses={409: {"description": "Nothing to roll back to."}})
def rollback_model(body: RollbackIn, user: Admin, pool: Pool) -> ModelOut:
    """Reactivate the model of this kind that was active before the current one."""
    with pool.connection() as conn:
        try:
            version = model_admin.rollback(conn, body.kind, user.email)
        except model_admin.ActivationRefused as exc:
            raise HTTPException(409, str(exc)) from None
        model = models.info_by_version(conn, version)
    assert model is not None
    return model_out(model)


# --- exports -----------------------------------------------------------------------------------


Render = Callable[[Iterator[Any]], Iterator[str]]


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a leading quote defuses formula-like strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_chunks(header: list[str], rows: Iterator[Any]) -> Iterator[str]:
    buffer = io.StringIO()
    # Every text cell quoted: a spreadsheet that splits on ";" (as many locales do) keeps a
    # title with a semicolon in one cell.
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(header)
    for n, row in enumerate(rows, 1):
        writer.writerow([csv_cell(v) for v in asdict(row).values()])
        if n % CSV_FLUSH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_lines(rows: Iterator[Any]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(asdict(row), default=_json_default, ensure_ascii=False) + "\n"


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def streamed(
    pool: ConnectionPool, stream: Callable[[Any], Iterator[Any]], render: Render
) -> Generator[str]:
    """Rows of `stream`, rendered while the response is sent: the connection (and the
    transaction the named cursor needs) is held until the last row is out or the client goes
    away."""
    with pool.connection() as conn, conn.transaction():
        yield from render(stream(conn))


class ClosingStreamingResponse(StreamingResponse):
    """Closes its generator however the response ends. Starlette leaves a client that went away
    with the generator suspended in a reference cycle, and its pooled connection stayed in the
    export's transaction until the garbage collector came round (once, past 30 s, in CI)."""

    def __init__(self, chunks: Generator[str], media_type: str, headers: dict[str, str]) -> None:
        super().__init__(chunks, media_type=media_type, headers=headers)
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: a cancelled response must still close. The worker thread has finished
            # its `next` by now (Starlette waits for it), so the generator is not running.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.chunks.close)


def _export(
    pool: ConnectionPool,
    stream: Callable[[Any], Iterator[Any]],
    fields: list[str],
    filename: str,
) -> StreamingResponse:
    render: Render
    if filename.endswith(".csv"):
        render, media = partial(csv_chunks, fields), "text/csv; charset=utf-8"
    else:
        render, media = jsonl_lines, "application/x-ndjson"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return ClosingStreamingResponse(streamed(pool, stream, render), media, headers)


PAIR_FIELDS = [f for f in exports.ExportPair.__dataclass_fields__]
LABEL_FIELDS = [f for f in exports.ExportLabel.__dataclass_fields__]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV, a header row first."}
}
JSONL_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-ndjson": {}}, "description": "One JSON object a line."}
}


@router.get("/export/pairs.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
def export_pairs_csv(user: Viewer, pool: ReadPool) -> StreamingResponse:
    """Every confirmed pair with both items' text, source, time and the score."""
    return _export(pool, exports.stream_confirmed_pairs, PAIR_FIELDS, "pairs.csv")


@router.get("/export/pairs.jsonl", response_class=StreamingResponse, responses=JSONL_RESPONSE)
def export_pairs_jsonl(user: Viewer, pool: ReadPool) -> StreamingResponse:
    """Every confirmed pair with both items' text, source, time and the score."""
    return _export(pool, exports.stream_confirmed_pairs, PAIR_FIELDS, "pairs.jsonl")


@router.get("/export/labels.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
def export_labels_csv(user: Viewer, pool: ReadPool) -> StreamingResponse:
    """Every item analysts labelled (relabel, or its role in a confirmed pair), with its text."""
    return _export(pool, exports.stream_labelled_items, LABEL_FIELDS, "labels.csv")


@router.get("/export/labels.jsonl", response_class=StreamingResponse, responses=JSONL_RESPONSE)
def export_labels_jsonl(user: Viewer, pool: ReadPool) -> StreamingResponse:
    """Every item analysts labelled (relabel, or its role in a confirmed pair), with its text."""
    return _export(pool, exports.stream_labelled_items, LABEL_FIELDS, "labels.jsonl")
