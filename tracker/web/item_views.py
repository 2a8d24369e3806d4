"""Item pages: full-text search with filters and highlighted excerpts, and one item in detail
(its text, classifications, labels, story, pairs and the relabel form). No SQL."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from tracker.domain import FEED_KINDS, LABELS, language_code, primary_language
from tracker.ingest.sanitise import plain_text, sanitise_html
from tracker.storage import browse
from tracker.web.deps import MAX_BIGINT, SESSION_NOTICE, AnyUser, Pool, render, without_nul

PAGE_SIZE = 25
# Offset pages: past this a search should be narrowed, not paged through.
MAX_PAGE = 200
# Matches are counted up to this many; beyond, the page says "more than".
COUNT_CAP = 1000
MAX_QUERY_CHARS = 200
SORTS = ("rank", "recent")

router = APIRouter()


@dataclass(frozen=True)
class Search:
    """What the search form asks for: the storage filter plus order and page."""

    where: browse.ItemFilter
    sort: str
    page: int
    # The form's fields understood, for page links.
    fields: dict[str, str]
    # The form's fields as typed, understood or not, for refilling the form.
    typed: dict[str, str]


def parse_search(params: Mapping[str, str]) -> tuple[Search, list[str]]:
    """The search a query string asks for and what was wrong with it (those parts ignored)."""
    problems: list[str] = []
    fields = {name: params.get(name, "").strip() for name in _FIELDS}
    typed = {k: without_nul(v[:MAX_QUERY_CHARS]) for k, v in fields.items() if v}
    q = typed.get("q") or None
    language = _choice(fields, "language", problems)
    kind = _choice(fields, "kind", problems)
    label = _choice(fields, "label", problems)
    since = _day(fields, "from", problems)
    until = _day(fields, "to", problems)
    story = _positive(fields, "story", problems, MAX_BIGINT)
    page = _positive(fields, "page", problems, MAX_PAGE) or 1
    sort = fields["sort"] or ("rank" if q else "recent")
    if sort not in SORTS:
        problems.append(f"Unknown order {sort!r}: choose rank or recent.")
        fields["sort"] = sort = "rank" if q else "recent"
    if sort == "rank" and q is None:
        sort = "recent"  # nothing to rank by
    where = browse.ItemFilter(
        q=q,
        label=label,
        # Items match on their language's primary subtag (browse.ItemFilter).
        language=primary_language(code) if (code := language_code(language)) else None,
        story_id=story,
        since=since,
        # The "to" day is included: the range ends at the next midnight.
        until=until + timedelta(days=1) if until else None,
        feed_kind=kind,
    )
    understood = {k: v for k, v in fields.items() if v}
    return Search(where, sort, page, understood, typed), problems


_FIELDS = ("q", "language", "kind", "label", "from", "to", "story", "sort", "page")
_CHOICES: dict[str, tuple[str, Callable[[str], bool]]] = {
    "language": ("a language code such as en or ro", lambda v: language_code(v) is not None),
    "kind": ("a feed kind", lambda v: v in FEED_KINDS),
    "label": ("a label", lambda v: v in LABELS),
}


def _choice(fields: dict[str, str], name: str, problems: list[str]) -> str | None:
    value = fields[name]
    if not value:
        return None
    what, valid = _CHOICES[name]
    if not valid(value):
        problems.append(f"{value[:50]!r} is not {what}.")
        del fields[name]
        return None
    return value


def _day(fields: dict[str, str], name: str, problems: list[str]) -> datetime | None:
    value = fields[name]
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError:
        problems.append(f"{name} must be a date such as 2026-12-01.")
        del fields[name]
        return None


def _positive(fields: dict[str, str], name: str, problems: list[str], most: int) -> int | None:
    value = fields[name]
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= most:
        problems.append(f"{name} must be a whole number from 1 to {most}.")
        del fields[name]
        return None
    return int(value)


def marked(text: str) -> Markup:
    """Search excerpt to HTML: the text escaped, then only our match marks made <mark>."""
    html = str(escape(text))
    html = html.replace(browse.MARK_START, "<mark>").replace(browse.MARK_END, "</mark>")
    return Markup(html)  # noqa: S704 - escaped above; the marks are ours (removed from the text)


def page_link(search: Search, page: int) -> str:
    return "/items?" + urlencode({**search.fields, "page": str(page)})


@router.get("/items", response_class=HTMLResponse)
def item_search(request: Request, user: AnyUser, pool: Pool) -> HTMLResponse:
    search, problems = parse_search(request.query_params)
    offset = (search.page - 1) * PAGE_SIZE
    with pool.connection() as conn:
        found = browse.search_items(conn, search.where, search.sort, PAGE_SIZE + 1, offset)
        total = browse.count_items(conn, search.where, COUNT_CAP)
    more = len(found) > PAGE_SIZE and search.page < MAX_PAGE
    return render(
        request,
        "items.html",
        user,
        hits=found[:PAGE_SIZE],
        total=total,
        count_cap=COUNT_CAP,
        first=offset + 1,
        search=search,
        problems=problems,
        marked=marked,
        previous=page_link(search, search.page - 1) if search.page > 1 else None,
        next=page_link(search, search.page + 1) if more else None,
    )


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_detail(
    request: Request,
    item_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: AnyUser,
    pool: Pool,
) -> HTMLResponse:
    with pool.connection() as conn:
        item = browse.get_item(conn, item_id)
        if item is None:
            raise HTTPException(status_code=404, detail="There is no such item.")
        history = browse.classification_history(conn, item_id)
        relabels = browse.analyst_labels(conn, item_id)
        story = browse.get_story(conn, item.story_id) if item.story_id is not None else None
        in_pairs = browse.item_pairs(conn, item_id)
    content = sanitise_html(item.content_html)
    return render(
        request,
        "item.html",
        user,
        item=item,
        # Feeds often repeat the summary as the content's opening: shown once, not twice.
        show_summary=not plain_text(content).startswith(item.summary[:200]),
        # Stored sanitised on ingest; sanitised again here so what is marked safe is known to
        # be, whatever wrote the row (imports, older versions of the sanitiser).
        content=Markup(content),  # noqa: S704 - nh3 output
        history=history,
        relabels=relabels,
        story=story,
        pairs=in_pairs,
        notice=request.session.pop(SESSION_NOTICE, None),
    )
