"""The story page (spread chart, items, clarifications, decisions) and merging and splitting
stories, as plain forms. The API (tracker.web.api) merges and splits through the same use cases
(tracker.usecases.stories), so both paths check, lock and audit alike. No SQL."""

from collections.abc import Collection
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from psycopg_pool import ConnectionPool

from tracker.storage import browse
from tracker.storage.users import User
from tracker.usecases import stories as story_usecases
from tracker.usecases.refused import Refused
from tracker.web import auth
from tracker.web.api_models import MAX_STORY_DECISIONS, MAX_STORY_ITEMS
from tracker.web.deps import (
    MAX_BIGINT,
    REFUSAL_STATUS,
    SESSION_NOTICE,
    AnyUser,
    Decider,
    FormText,
    Pool,
    render,
    see_other,
)
from tracker.web.story_chart import spread_chart

# A refused merge shows the story number as typed: a number, not an essay.
MAX_TYPED_CHARS = 40
StoryId = Annotated[int, PathParam(ge=1, le=MAX_BIGINT)]

router = APIRouter()


@router.get("/stories/{story_id}", response_class=HTMLResponse)
def story_page(request: Request, story_id: StoryId, user: AnyUser, pool: Pool) -> HTMLResponse:
    return _page(request, user, pool, story_id)


def _page(
    request: Request,
    user: User,
    pool: ConnectionPool,
    story_id: int,
    status_code: int = 200,
    error: str | None = None,
    source: str = "",
    ticked: Collection[str] = (),
) -> HTMLResponse:
    """The story page; after a refused merge or split, with the reason and the form as it was
    filled in (the story number typed, the items ticked)."""
    with pool.connection() as conn:
        story = browse.get_story(conn, story_id)
        if story is None:
            raise HTTPException(404, "There is no such story (it may have been merged).")
        found = browse.list_items(conn, browse.ItemFilter(story_id=story_id), MAX_STORY_ITEMS)
        outlets = browse.story_outlets(conn, story_id)
        spread = browse.story_spread(conn, story_id)
        clarifications = browse.story_clarifications(conn, story_id)
        decisions = browse.story_decisions(conn, story_id, MAX_STORY_DECISIONS)
    return render(
        request,
        "story.html",
        user,
        status_code=status_code,
        story=story,
        items=found,
        outlets=outlets,
        chart=spread_chart(spread, outlets),
        spread=spread,
        clarifications=clarifications,
        decisions=decisions,
        error=error,
        source=source,
        ticked={str(i) for i in ticked},
        notice=request.session.pop(SESSION_NOTICE, None),
    )


@router.post("/stories/{story_id}/merge", response_model=None)
def merge_form(
    request: Request,
    story_id: StoryId,
    user: Decider,
    pool: Pool,
    source: FormText = "",
) -> Response:
    """Merge story `source` into this one."""
    typed = source.strip()[:MAX_TYPED_CHARS]
    try:
        source_id = parse_id(source, "the story to merge into this one")
        with pool.connection() as conn, conn.transaction():
            story_usecases.merge(conn, user, story_id, source_id, via="web")
    except Refused as refused:
        return _refused(request, user, pool, story_id, refused, source=typed)
    if auth.wants_html(request):
        request.session[SESSION_NOTICE] = f"Story {source_id} merged into story {story_id}."
    return see_other(f"/stories/{story_id}")


@router.post("/stories/{story_id}/split", response_model=None)
def split_form(
    request: Request,
    story_id: StoryId,
    user: Decider,
    pool: Pool,
    item_id: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Move the ticked items out of this story into a new one."""
    ticked = item_id or []
    try:
        chosen = [parse_id(value, "an item") for value in ticked]
        with pool.connection() as conn, conn.transaction():
            new_id = story_usecases.split(conn, user, story_id, chosen, via="web")
    except Refused as refused:
        return _refused(request, user, pool, story_id, refused, ticked=ticked)
    moved = len(set(chosen))
    if auth.wants_html(request):
        request.session[SESSION_NOTICE] = (
            f"{moved} item{'s' if moved != 1 else ''} moved out of story {story_id} "
            f"into this new story {new_id}."
        )
    return see_other(f"/stories/{new_id}")


def _refused(
    request: Request,
    user: User,
    pool: ConnectionPool,
    story_id: int,
    refused: Refused,
    source: str = "",
    ticked: Collection[str] = (),
) -> HTMLResponse:
    """A browser gets the story page with the reason and the form as filled in; a script the
    JSON error it always got."""
    status = REFUSAL_STATUS[refused.refusal]
    if not auth.wants_html(request):
        raise HTTPException(status, str(refused)) from None
    return _page(request, user, pool, story_id, status, str(refused), source, ticked)


def parse_id(value: str, what: str) -> int:
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_BIGINT:
        raise Refused("invalid", f"Give the number of {what}.")
    return int(text)
