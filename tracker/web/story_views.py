"""The story page (spread chart, items, clarifications, decisions) and merging and splitting
stories, as plain forms. The API (tracker.web.api) merges and splits through the same use cases
(tracker.usecases.stories), so both paths check, lock and audit alike. No SQL."""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from tracker.storage import browse
from tracker.usecases import stories as story_usecases
from tracker.web.api_models import MAX_STORY_DECISIONS, MAX_STORY_ITEMS
from tracker.web.deps import (
    MAX_BIGINT,
    AnyUser,
    Decider,
    Pool,
    refusals_as_http,
    render,
    see_other,
)
from tracker.web.story_chart import spread_chart

StoryId = Annotated[int, PathParam(ge=1, le=MAX_BIGINT)]

router = APIRouter()


@router.get("/stories/{story_id}", response_class=HTMLResponse)
def story_page(request: Request, story_id: StoryId, user: AnyUser, pool: Pool) -> HTMLResponse:
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
        story=story,
        items=found,
        outlets=outlets,
        chart=spread_chart(spread, outlets),
        spread=spread,
        clarifications=clarifications,
        decisions=decisions,
    )


@router.post("/stories/{story_id}/merge", response_model=None)
def merge_form(
    request: Request,
    story_id: StoryId,
    user: Decider,
    pool: Pool,
    source: Annotated[str, Form()] = "",
) -> Response:
    """Merge story `source` into this one."""
    source_id = parse_id(source, "the story to merge into this one")
    with pool.connection() as conn, conn.transaction(), refusals_as_http():
        story_usecases.merge(conn, user, story_id, source_id, via="web")
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
    chosen = [parse_id(value, "an item") for value in item_id or []]
    with pool.connection() as conn, conn.transaction(), refusals_as_http():
        new_id = story_usecases.split(conn, user, story_id, chosen, via="web")
    return see_other(f"/stories/{new_id}")


def parse_id(value: str, what: str) -> int:
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_BIGINT:
        raise HTTPException(400, f"Give the number of {what}.")
    return int(text)
