"""The story page (spread chart, items, clarifications, decisions) and merging and splitting
stories, as plain forms. The API (tracker.web.api) merges and splits through the same
functions, so both paths check, lock and audit alike. No SQL."""

from typing import Annotated

import psycopg
from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from tracker.storage import audit, browse, pairs, stories
from tracker.storage.users import User
from tracker.web.api_models import MAX_STORY_DECISIONS, MAX_STORY_ITEMS
from tracker.web.story_chart import spread_chart
from tracker.web.views import MAX_BIGINT, AnyUser, Decider, Pool, render, see_other

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
    with pool.connection() as conn, conn.transaction():
        merge(conn, user, story_id, source_id, via="web")
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
    with pool.connection() as conn, conn.transaction():
        new_id = split(conn, user, story_id, chosen, via="web")
    return see_other(f"/stories/{new_id}")


def parse_id(value: str, what: str) -> int:
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_BIGINT:
        raise HTTPException(400, f"Give the number of {what}.")
    return int(text)


def merge(conn: psycopg.Connection, user: User, target: int, source: int, via: str) -> None:
    """Merge story `source` into `target`: its items, pairs and followers go to `target`, the
    target's clarifications are offered for the moved rumours, and `source` is deleted."""
    if target == source:
        raise HTTPException(400, "A story cannot be merged into itself.")
    present = stories.lock(conn, [target, source])
    for story_id in (target, source):
        if story_id not in present:
            raise HTTPException(404, f"There is no story {story_id}.")
    moved = stories.item_ids(conn, source)
    merged = stories.merge(conn, target, source)
    # As pairing does for a rumour joining a story: its clarifications answer every outlet.
    added = pairs.spread_to_stories(conn, sorted(moved))
    details = {
        "merged": source,
        "items": sorted(moved),
        "subscriptions": merged.subscriptions,
        "pairs_added": added,
        "via": via,
    }
    audit.record(conn, user.email, "story.merge", f"story:{target}", details)


def split(conn: psycopg.Connection, user: User, story_id: int, chosen: list[int], via: str) -> int:
    """Move `chosen` items of the story into a new story; returns the new story's id."""
    if not stories.lock(conn, [story_id]):
        raise HTTPException(404, f"There is no story {story_id}.")
    current = stories.item_ids(conn, story_id)
    moving = sorted(set(chosen))
    problem = split_problem(moving, current)
    if problem:
        raise HTTPException(400, problem)
    new_id = stories.split(conn, story_id, moving)
    details = {"new_story": new_id, "items": moving, "via": via}
    audit.record(conn, user.email, "story.split", f"story:{story_id}", details)
    return new_id


def split_problem(moving: list[int], current: set[int]) -> str | None:
    if not moving:
        return "Tick the items to move into a new story."
    strangers = [str(i) for i in moving if i not in current]
    if strangers:
        return f"Not items of this story: {', '.join(strangers)}."
    if len(moving) == len(current):
        return "A split must leave at least one item in this story."
    return None
