"""The review queue's filters (GET parameters) and term highlighting. No SQL, no requests."""

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import get_args
from urllib.parse import urlencode

from markupsafe import Markup, escape

from tracker.domain import FEED_KINDS, PairStatus, language_code
from tracker.storage.reviews import QueueFilter

ALL_STATUSES = "all"
STATUSES: tuple[str, ...] = get_args(PairStatus)
MAX_FILTER_CHARS = 100
MAX_TERMS = 50


def review_filter(params: Mapping[str, str]) -> tuple[QueueFilter, list[str]]:
    """The filter a query string asks for, and what was wrong with it (those parts ignored)."""
    problems: list[str] = []

    def text(name: str) -> str | None:
        value = params.get(name, "").strip()[:MAX_FILTER_CHARS]
        if "\x00" in value:  # PostgreSQL text cannot hold NUL: the query would fail
            problems.append(f"The {name} filter may not contain NUL.")
            return None
        return value or None

    status: str | None = text("status") or "suggested"
    if status == ALL_STATUSES:
        status = None
    elif status not in STATUSES:
        problems.append(f"Unknown status {status!r}.")
        status = "suggested"
    typed = text("language")
    language = language_code(typed)
    if typed is not None and language is None:
        problems.append(f"{typed!r} is not a language code such as en or ro.")
    kind = text("kind")
    if kind is not None and kind not in FEED_KINDS:
        problems.append(f"Unknown feed kind {kind!r}.")
        kind = None
    where = QueueFilter(
        status=status,
        language=language,
        feed_kind=kind,
        tag=text("tag"),
        score_min=_number(text("score_min"), "score_min", problems),
        score_max=_number(text("score_max"), "score_max", problems),
        date_from=_day(text("from"), "from", problems),
        date_to=_day(text("to"), "to", problems),
    )
    return where, problems


def _number(value: str | None, name: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0.0 <= number <= 1.0:  # also refuses NaN
        problems.append(f"{name} must be a number from 0 to 1.")
        return None
    return number


def _day(value: str | None, name: str, problems: list[str]) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{name} must be a date such as 2026-12-01.")
        return None


def filter_query(where: QueueFilter) -> str:
    """The query string that asks for `where` (the inverse of review_filter)."""
    status = ALL_STATUSES if where.status is None else where.status
    pairs = {
        "status": None if status == "suggested" else status,
        "language": where.language,
        "kind": where.feed_kind,
        "tag": where.tag,
        "score_min": None if where.score_min is None else f"{where.score_min:g}",
        "score_max": None if where.score_max is None else f"{where.score_max:g}",
        "from": where.date_from.isoformat() if where.date_from else None,
        "to": where.date_to.isoformat() if where.date_to else None,
    }
    return urlencode({key: value for key, value in pairs.items() if value is not None})


def highlight(text: str, terms: Iterable[str]) -> Markup:
    """`text` escaped, with each shared term wrapped in <mark>. Every piece of the text goes
    through escape(); only our own <mark> tags are markup, so feed text stays inert."""
    wanted = sorted({t for t in terms if t.strip()}, key=len, reverse=True)[:MAX_TERMS]
    if not wanted:
        return escape(text)
    pattern = re.compile("|".join(re.escape(term) for term in wanted), re.IGNORECASE)
    out: list[Markup] = []
    last = 0
    for found in pattern.finditer(text):
        out.append(escape(text[last : found.start()]))
        out.append(Markup("<mark>%s</mark>") % found.group(0))
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)
