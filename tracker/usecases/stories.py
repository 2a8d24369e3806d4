"""Merging and splitting stories, for the story page and the API alike: each checks, locks
the stories, moves the items and writes its audit row in the caller's transaction."""

import psycopg

from tracker.pipeline import pairing
from tracker.storage import audit, stories
from tracker.storage.users import User
from tracker.usecases.refused import Refused


def merge(conn: psycopg.Connection, user: User, target: int, source: int, via: str) -> None:
    """Merge story `source` into `target`: its items, pairs and followers go to `target`, the
    target's clarifications are offered for the moved rumours, and `source` is deleted."""
    if target == source:
        raise Refused("invalid", "A story cannot be merged into itself.")
    present = stories.lock(conn, [target, source])
    for story_id in (target, source):
        if story_id not in present:
            raise Refused("missing", f"There is no story {story_id}.")
    moved = stories.item_ids(conn, source)
    merged = stories.merge(conn, target, source)
    # As pairing does for a rumour joining a story: its clarifications answer every outlet.
    added = pairing.spread_to_stories(conn, sorted(moved))
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
        raise Refused("missing", f"There is no story {story_id}.")
    current = stories.item_ids(conn, story_id)
    moving = sorted(set(chosen))
    problem = split_problem(moving, current)
    if problem:
        raise Refused("invalid", problem)
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
