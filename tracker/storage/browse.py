"""Read-only queries behind the JSON API: filtered, keyset-paginated lists and details.

Lists are paginated by keyset (the last row's sort key), not OFFSET, so a page deep in a large
table costs what the first one does and rows inserted meanwhile shift nothing."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from tracker.storage import reviews
from tracker.storage.pairs import PairView

# The columns of a PairView; the same shape as the review queue's (tracker.storage.pairs).
_PAIR_SELECT = """
SELECT p.id, p.score, p.status, p.created_at, p.explanation,
       r.id AS rumour_id, r.title AS rumour_title, r.summary AS rumour_summary,
       r.url AS rumour_url, coalesce(rf.title, rf.host) AS rumour_feed, rf.kind AS rumour_kind,
       coalesce(r.published_at, r.fetched_at) AS rumour_seen_at,
       c.id AS clarification_id, c.title AS clarification_title,
       c.summary AS clarification_summary, c.url AS clarification_url,
       coalesce(cf.title, cf.host) AS clarification_feed, cf.kind AS clarification_kind,
       coalesce(c.published_at, c.fetched_at) AS clarification_seen_at,
       r.story_id,
       (SELECT count(DISTINCT s.feed_id) FROM items s WHERE s.story_id = r.story_id)::int
           AS story_outlets
FROM pairs p
JOIN items r ON r.id = p.rumour_id JOIN feeds rf ON rf.id = r.feed_id
JOIN items c ON c.id = p.clarification_id JOIN feeds cf ON cf.id = c.feed_id
"""


@dataclass(frozen=True)
class PairFilter:
    """Language and feed kind match when either side of the pair has them; the time range is
    when the pair was suggested."""

    status: str | None = None
    language: str | None = None
    feed_kind: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class PairKey:
    """Where a page of pairs ends, in queue order (score, then newest, then id; all descending)."""

    score: float
    created_at: datetime
    id: int


def _where(conditions: list[str]) -> sql.Composable:
    # Only the conditions a request sets, each a fixed fragment with named placeholders: the
    # planner then sees exactly the query it runs, never a generic "$1 IS NULL OR ..." plan.
    if not conditions:
        return sql.SQL("")
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(sql.SQL(c) for c in conditions)


_PAIR_CONDITIONS = {
    "status": "p.status = %(status)s",
    # Scores are compared as real, the column's type: a float8 of one would not round-trip.
    "min_score": "p.score >= %(min_score)s::real",
    "max_score": "p.score <= %(max_score)s::real",
    "since": "p.created_at >= %(since)s",
    "until": "p.created_at < %(until)s",
}


def list_pairs(
    conn: psycopg.Connection, where: PairFilter, limit: int, after: PairKey | None = None
) -> list[PairView]:
    """Pairs in queue order (best score first, newest first among equals), after `after`."""
    params: dict[str, Any] = {**where.__dict__, "limit": limit}
    conditions = [c for name, c in _PAIR_CONDITIONS.items() if params[name] is not None]
    # Language (its primary subtag) and feed kind: either side's, kept on the pair (0014).
    params["facets"] = reviews.facets(where.language, where.feed_kind, None)
    if params["facets"]:
        conditions.append("p.facets @> %(facets)s::text[]")
    if after is not None:
        conditions.append(
            "(p.score, p.created_at, p.id)"
            " < (%(after_score)s::real, %(after_created)s, %(after_id)s)"
        )
        params.update(after_score=after.score, after_created=after.created_at, after_id=after.id)
    query = (
        sql.SQL(_PAIR_SELECT)
        + _where(conditions)
        + sql.SQL(" ORDER BY p.score DESC, p.created_at DESC, p.id DESC LIMIT %(limit)s")
    )
    with conn.cursor(row_factory=class_row(PairView)) as cur:
        # Never prepared: a plan made for one filter's values is a slow one for another's.
        cur.execute(query, params, prepare=False)
        return cur.fetchall()


def get_pair(conn: psycopg.Connection, pair_id: int) -> PairView | None:
    with conn.cursor(row_factory=class_row(PairView)) as cur:
        cur.execute(_PAIR_SELECT + "WHERE p.id = %s", (pair_id,))
        return cur.fetchone()


# --- items -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRow:
    """An item as lists show it, with its latest classification (the active model's first)."""

    id: int
    feed_id: int
    feed: str
    feed_kind: str
    title: str
    summary: str
    url: str | None
    language: str | None
    seen_at: datetime
    story_id: int | None
    label: str | None
    probability: float | None
    model_version: str | None


@dataclass(frozen=True)
class ItemFilter:
    """`q` is full-text in web-search syntax (every word must occur), read in `language`'s
    text search configuration or, without one, in every configuration; `language` matches the
    primary subtag; `since` and `until` bound the time the item was seen, `until` excluded."""

    q: str | None = None
    label: str | None = None
    language: str | None = None
    feed_id: int | None = None
    since: datetime | None = None
    story_id: int | None = None
    feed_kind: str | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class ItemKey:
    """Where a page of items ends: newest first, then id descending."""

    seen_at: datetime
    id: int


_ITEM_COLUMNS = """
SELECT i.id, i.feed_id, coalesce(f.title, f.host) AS feed, f.kind AS feed_kind, i.title,
       i.summary, i.url, i.language, coalesce(i.published_at, i.fetched_at) AS seen_at,
       i.story_id, cl.label, cl.probability, cl.model_version"""
_ITEM_FROM = """
FROM items i
JOIN feeds f ON f.id = i.feed_id
LEFT JOIN LATERAL (
    SELECT k.label, k.probability, k.model_version FROM classifications k
    WHERE k.item_id = i.id
    ORDER BY k.model_version = (SELECT m.version FROM models m
                                WHERE m.kind = 'item' AND m.active) DESC NULLS LAST,
             k.created_at DESC, k.id DESC
    LIMIT 1) cl ON true
"""
_ITEM_SELECT = _ITEM_COLUMNS + _ITEM_FROM


_SEEN = "coalesce(i.published_at, i.fetched_at)"
_QUERY = "item_search_query(%(q)s, %(language)s::text)"
_ITEM_CONDITIONS = {
    # Served by the items_search_tsv GIN index (migration 0011).
    "q": f"i.search_tsv @@ {_QUERY}",
    "label": "cl.label = %(label)s",
    "language": "split_part(lower(i.language), '-', 1) = %(language)s",
    "feed_id": "i.feed_id = %(feed_id)s",
    "story_id": "i.story_id = %(story_id)s",
    "since": f"{_SEEN} >= %(since)s",
    "feed_kind": "f.kind = %(feed_kind)s",
    "until": f"{_SEEN} < %(until)s",
}


def list_items(
    conn: psycopg.Connection, where: ItemFilter, limit: int, after: ItemKey | None = None
) -> list[ItemRow]:
    """Items newest first (id descending among equals), after `after`."""
    params: dict[str, Any] = {**where.__dict__, "limit": limit}
    conditions = [c for name, c in _ITEM_CONDITIONS.items() if params[name] is not None]
    if after is not None:
        conditions.append(f"({_SEEN}, i.id) < (%(after_seen)s, %(after_id)s)")
        params.update(after_seen=after.seen_at, after_id=after.id)
    query = (
        sql.SQL(_ITEM_SELECT)
        + _where(conditions)
        + sql.SQL(f" ORDER BY {_SEEN} DESC, i.id DESC LIMIT %(limit)s")
    )
    with conn.cursor(row_factory=class_row(ItemRow)) as cur:
        # Never prepared: a plan made for one filter's values is a slow one for another's.
        cur.execute(query, params, prepare=False)
        return cur.fetchall()


# ts_headline marks matches with these private-use characters, removed from the text first, so
# the web layer can escape the text and then turn only our marks into <mark> elements.
MARK_START, MARK_END = "\ue000", "\ue001"
_MARKS = f"StartSel={MARK_START}, StopSel={MARK_END}"
_HEADLINE_OPTIONS = {
    "title_options": f"HighlightAll=true, {_MARKS}",
    "summary_options": f"MaxWords=40, MinWords=20, {_MARKS}",
    "marks": MARK_START + MARK_END,
}
_HEADLINES = f"""
    ts_headline(item_search_config(h.language), translate(h.title, %(marks)s, ''), {_QUERY},
                %(title_options)s) AS title_marked,
    ts_headline(item_search_config(h.language), translate(h.summary, %(marks)s, ''), {_QUERY},
                %(summary_options)s) AS summary_marked"""
_UNMARKED = """
    translate(h.title, %(marks)s, '') AS title_marked,
    translate(h.summary, %(marks)s, '') AS summary_marked"""
# order: (rank column, inner ORDER BY, the same order on the page's rows)
_ORDERS = {
    "rank": (
        f"ts_rank(i.search_tsv, {_QUERY})",
        f"rank DESC, {_SEEN} DESC, i.id DESC",
        "rank DESC, seen_at DESC, id DESC",
    ),
    "recent": ("NULL::real", f"{_SEEN} DESC, i.id DESC", "seen_at DESC, id DESC"),
}


@dataclass(frozen=True)
class ItemHit(ItemRow):
    """A search result: its rank (None unless sorted by rank) and title and summary excerpt
    with the matched words between MARK_START and MARK_END (plain text otherwise)."""

    rank: float | None
    title_marked: str
    summary_marked: str


def search_items(
    conn: psycopg.Connection, where: ItemFilter, order: str, limit: int, offset: int = 0
) -> list[ItemHit]:
    """A page of items by rank (`order="rank"`, needs `q`) or newest first ("recent")."""
    params: dict[str, Any] = {**where.__dict__, **_HEADLINE_OPTIONS, "limit": limit}
    params["offset"] = offset
    conditions = [c for name, c in _ITEM_CONDITIONS.items() if params[name] is not None]
    if order == "rank" and where.q is None:
        raise ValueError("ranking needs a search text")
    rank, inner_order, outer_order = _ORDERS[order]
    # Excerpts are made for the page's rows only, after the sort and limit.
    query = (
        sql.SQL("SELECT h.*, {} FROM (").format(sql.SQL(_HEADLINES if where.q else _UNMARKED))
        + sql.SQL(_ITEM_COLUMNS + f", {rank} AS rank" + _ITEM_FROM)
        + _where(conditions)
        + sql.SQL(f" ORDER BY {inner_order} LIMIT %(limit)s OFFSET %(offset)s) h")
        + sql.SQL(f" ORDER BY {outer_order}")
    )
    with conn.cursor(row_factory=class_row(ItemHit)) as cur:
        # Never prepared: a plan made for one filter's values is a slow one for another's.
        cur.execute(query, params, prepare=False)
        return cur.fetchall()


def count_items(conn: psycopg.Connection, where: ItemFilter, cap: int) -> int:
    """How many items match, counted up to `cap` (a page says "more than N" beyond it): an
    exact count of a common word over millions of items would cost more than the page."""
    params: dict[str, Any] = {**where.__dict__, "cap": cap + 1}
    conditions = [c for name, c in _ITEM_CONDITIONS.items() if params[name] is not None]
    query = (
        sql.SQL("SELECT count(*) FROM (SELECT 1" + _ITEM_FROM)
        + _where(conditions)
        + sql.SQL(" LIMIT %(cap)s) matched")
    )
    with conn.cursor() as cur:
        cur.execute(query, params, prepare=False)
        row = cur.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class ItemDetail:
    id: int
    feed_id: int
    feed: str
    feed_kind: str
    title: str
    summary: str
    content_html: str
    url: str | None
    author: str | None
    language: str | None
    categories: list[str]
    published_at: datetime | None
    fetched_at: datetime
    seen_at: datetime
    revision: int
    story_id: int | None
    duplicate_of: int | None


@dataclass(frozen=True)
class Classification:
    model_version: str
    label: str
    probability: float
    created_at: datetime


@dataclass(frozen=True)
class AnalystLabel:
    label: str
    user_email: str | None
    created_at: datetime


def get_item(conn: psycopg.Connection, item_id: int) -> ItemDetail | None:
    with conn.cursor(row_factory=class_row(ItemDetail)) as cur:
        cur.execute(
            """SELECT i.id, i.feed_id, coalesce(f.title, f.host) AS feed, f.kind AS feed_kind,
                      i.title, i.summary, i.content_html, i.url, i.author, i.language,
                      i.categories, i.published_at, i.fetched_at,
                      coalesce(i.published_at, i.fetched_at) AS seen_at, i.revision,
                      i.story_id, i.duplicate_of
               FROM items i JOIN feeds f ON f.id = i.feed_id WHERE i.id = %s""",
            (item_id,),
        )
        return cur.fetchone()


def classification_history(conn: psycopg.Connection, item_id: int) -> list[Classification]:
    """Every model's verdict on the item, oldest first."""
    with conn.cursor(row_factory=class_row(Classification)) as cur:
        cur.execute(
            """SELECT model_version, label, probability, created_at FROM classifications
               WHERE item_id = %s ORDER BY created_at, id""",
            (item_id,),
        )
        return cur.fetchall()


def analyst_labels(conn: psycopg.Connection, item_id: int) -> list[AnalystLabel]:
    """Relabels by analysts still standing (not undone), oldest first; the last one is the
    item's label."""
    with conn.cursor(row_factory=class_row(AnalystLabel)) as cur:
        cur.execute(
            """SELECT l.label, u.email AS user_email, l.created_at
               FROM item_labels l LEFT JOIN users u ON u.id = l.user_id
               WHERE l.item_id = %s AND l.undone_at IS NULL ORDER BY l.created_at, l.id""",
            (item_id,),
        )
        return cur.fetchall()


def item_pairs(conn: psycopg.Connection, item_id: int) -> list[PairView]:
    """The pairs the item is in, on either side, in queue order."""
    with conn.cursor(row_factory=class_row(PairView)) as cur:
        cur.execute(
            _PAIR_SELECT
            + """WHERE p.rumour_id = %(id)s OR p.clarification_id = %(id)s
               ORDER BY p.score DESC, p.created_at DESC, p.id DESC""",
            {"id": item_id},
        )
        return cur.fetchall()


# --- stories ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    id: int
    title: str
    first_seen_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class Outlet:
    feed_id: int
    feed: str
    feed_kind: str
    items: int
    first_seen_at: datetime


@dataclass(frozen=True)
class SpreadDay:
    day: date
    items: int
    outlets: int


@dataclass(frozen=True)
class StoryClarification:
    """A clarification paired with one of the story's rumours (rejected pairs left out)."""

    item_id: int
    title: str
    url: str | None
    feed: str
    feed_kind: str
    seen_at: datetime
    best_score: float
    confirmed: bool


def get_story(conn: psycopg.Connection, story_id: int) -> Story | None:
    with conn.cursor(row_factory=class_row(Story)) as cur:
        cur.execute(
            "SELECT id, title, first_seen_at, created_at FROM stories WHERE id = %s", (story_id,)
        )
        return cur.fetchone()


def story_outlets(conn: psycopg.Connection, story_id: int) -> list[Outlet]:
    """The feeds that carried the story, in the order they first did."""
    with conn.cursor(row_factory=class_row(Outlet)) as cur:
        cur.execute(
            """SELECT f.id AS feed_id, coalesce(f.title, f.host) AS feed, f.kind AS feed_kind,
                      count(*)::int AS items,
                      min(coalesce(i.published_at, i.fetched_at)) AS first_seen_at
               FROM items i JOIN feeds f ON f.id = i.feed_id
               WHERE i.story_id = %s
               GROUP BY f.id ORDER BY first_seen_at, f.id""",
            (story_id,),
        )
        return cur.fetchall()


def story_spread(conn: psycopg.Connection, story_id: int) -> list[SpreadDay]:
    """Items and distinct outlets per UTC day on which the story had any."""
    with conn.cursor(row_factory=class_row(SpreadDay)) as cur:
        cur.execute(
            """SELECT (coalesce(published_at, fetched_at) AT TIME ZONE 'UTC')::date AS day,
                      count(*)::int AS items, count(DISTINCT feed_id)::int AS outlets
               FROM items WHERE story_id = %s GROUP BY 1 ORDER BY 1""",
            (story_id,),
        )
        return cur.fetchall()


def story_clarifications(conn: psycopg.Connection, story_id: int) -> list[StoryClarification]:
    with conn.cursor(row_factory=class_row(StoryClarification)) as cur:
        cur.execute(
            """SELECT c.id AS item_id, c.title, c.url, coalesce(f.title, f.host) AS feed,
                      f.kind AS feed_kind, coalesce(c.published_at, c.fetched_at) AS seen_at,
                      max(p.score) AS best_score, bool_or(p.status = 'confirmed') AS confirmed
               FROM pairs p
               JOIN items r ON r.id = p.rumour_id
               JOIN items c ON c.id = p.clarification_id JOIN feeds f ON f.id = c.feed_id
               WHERE r.story_id = %s AND p.status <> 'rejected'
               GROUP BY c.id, f.id ORDER BY seen_at, c.id""",
            (story_id,),
        )
        return cur.fetchall()


@dataclass(frozen=True)
class StoryDecision:
    """An analyst's review of a pair whose rumour is in the story (undone ones included)."""

    pair_id: int
    rumour_title: str
    clarification_title: str
    pair_status: str
    decision: str
    reason: str | None
    user_email: str | None
    created_at: datetime
    undone_at: datetime | None


def story_decisions(conn: psycopg.Connection, story_id: int, limit: int) -> list[StoryDecision]:
    """The story's reviews, newest first."""
    with conn.cursor(row_factory=class_row(StoryDecision)) as cur:
        cur.execute(
            """SELECT p.id AS pair_id, r.title AS rumour_title, c.title AS clarification_title,
                      p.status AS pair_status, v.decision, v.reason, u.email AS user_email,
                      v.created_at, v.undone_at
               FROM items r
               JOIN pairs p ON p.rumour_id = r.id
               JOIN reviews v ON v.pair_id = p.id
               JOIN items c ON c.id = p.clarification_id
               LEFT JOIN users u ON u.id = v.user_id
               WHERE r.story_id = %s
               ORDER BY v.created_at DESC, v.id DESC LIMIT %s""",
            (story_id, limit),
        )
        return cur.fetchall()
