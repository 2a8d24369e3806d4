"""Parse fetched bytes with feedparser (never a URL or path) into entries with stable identity."""

import calendar
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
import nh3

from tracker.domain import ParsedEntry

TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid)$", re.IGNORECASE)
WHITESPACE = re.compile(r"\s+")


class NotAFeedError(Exception):
    """The bytes are not a feed feedparser can read."""


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    language: str | None
    entries: list[ParsedEntry]
    bozo_reason: str | None


def parse(
    body: bytes, headers: dict[str, str] | None = None, base_url: str | None = None
) -> ParsedFeed:
    response_headers = dict(headers or {})
    if base_url:
        response_headers["content-location"] = base_url
    parsed = feedparser.parse(body, response_headers=response_headers)
    bozo = _bozo_reason(parsed)
    if not parsed.entries and (bozo or not parsed.get("version")):
        raise NotAFeedError(f"not a feed: {bozo or 'no feed elements found'}")
    language = parsed.feed.get("language") or None
    entries = [e for e in (_entry(raw, language) for raw in parsed.entries) if e is not None]
    return ParsedFeed(
        title=_text(parsed.feed.get("title")) or None,
        language=language,
        entries=entries,
        bozo_reason=bozo,
    )


def _bozo_reason(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}" if exc else "malformed feed"


def _entry(raw: Any, feed_language: str | None) -> ParsedEntry | None:
    title = _text(raw.get("title"))
    summary = _text(raw.get("summary") or _first_content(raw))
    if not title and not summary:
        return None
    guid = (raw.get("id") or "").strip() or None
    link = canonical_url(raw.get("link"))
    content_hash = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    dedupe_key = guid or link or f"sha256:{content_hash}"
    return ParsedEntry(
        dedupe_key=dedupe_key[:2000],
        guid=guid,
        url=link,
        title=title or summary[:120],
        summary=summary,
        language=_entry_language(raw) or feed_language,
        published_at=_date(raw),
        content_hash=content_hash,
    )


def _first_content(raw: Any) -> str:
    content = raw.get("content") or []
    return str(content[0].get("value", "")) if content else ""


def _entry_language(raw: Any) -> str | None:
    for detail in (raw.get("title_detail"), raw.get("summary_detail")):
        if detail and detail.get("language"):
            return str(detail["language"])
    return None


def _text(value: Any) -> str:
    """HTML to plain text: sanitise away every tag, then decode entities."""
    if not value:
        return ""
    stripped = nh3.clean(str(value), tags=set(), clean_content_tags={"script", "style"})
    return WHITESPACE.sub(" ", html.unescape(stripped)).strip()


def _date(raw: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get skips FeedParserDict's deprecated key aliasing (and its warning).
        value = dict.get(raw, key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def canonical_url(url: str | None) -> str | None:
    """Drop tracking parameters and the fragment so the same article has one URL."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not TRACKING_PARAMS.match(k)
    ]
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), "")
    )
