"""Parse fetched bytes into entries with stable identity.

XML feeds (RSS, Atom, RDF) go through feedparser, which is only ever given bytes: handed a URL
or a path it would read `file://` and local files itself, without a timeout. JSON Feed goes
through our own reader (`jsonfeed`). Both are mapped onto one `_Fields` shape so identity,
sanitising and size limits are applied once, the same way.
"""

import calendar
import hashlib
import html
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

from tracker.domain import ParsedEntry
from tracker.ingest import jsonfeed
from tracker.ingest.sanitise import (
    absolute,
    normalise,
    plain_text,
    resolve,
    sanitise_html,
    scheme,
    scrub,
)

TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid)$", re.IGNORECASE)
MAX_ENTRIES = 20_000  # a 10,000-item archive feed parses whole; the body cap bounds the rest
MAX_TITLE = 1000
MAX_SUMMARY = 20_000
MAX_KEY = 2000
MAX_AUTHOR = 200
MAX_CATEGORIES = 20
MAX_CATEGORY = 100
MAX_ENCLOSURES = 20
MAX_LANGUAGE = 35
FALLBACK_TITLE = 120
DESCRIBED_TITLES = 10
DESCRIBE_MAX_BYTES = 10 * 1024 * 1024  # the default fetch cap (TRACKER_FETCH_MAX_BYTES)


class NotAFeedError(Exception):
    """The bytes are not a feed we can read."""


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    language: str | None
    entries: list[ParsedEntry]
    bozo_reason: str | None


@dataclass(frozen=True)
class _Fields:
    """One entry as read, before identity, sanitising and limits; the same for XML and JSON."""

    guid: str
    link: str
    title: str  # plain text
    summary: str  # plain text
    bodies: tuple[str, ...]  # HTML candidates for content_html; plain text arrives escaped
    published: datetime | None
    updated: datetime | None
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    enclosures: tuple[str, ...]
    language: str | None


def parse(
    body: bytes, headers: dict[str, str] | None = None, base_url: str | None = None
) -> ParsedFeed:
    # HTTP header names are case-insensitive; feedparser only looks up lower-case ones.
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if jsonfeed.looks_like_json(body, lowered.get("content-type")):
        return _parse_json(body, base_url)
    return _parse_xml(body, lowered, base_url)


def describe_file(path: Path, max_bytes: int = DESCRIBE_MAX_BYTES) -> dict[str, Any]:
    """What `parse` makes of a local file, for `tracker feeds parse PATH`. The file is read
    here and only its bytes go to the parser (feedparser would open paths and URLs itself)."""
    try:
        parsed = parse(_read_capped(path, max_bytes))
    except OSError as exc:
        return _described_failure(f"cannot read {path}: {exc.strerror or exc}")
    except NotAFeedError as exc:
        return _described_failure(str(exc))
    return {
        "entries": len(parsed.entries),
        "titles": [e.title for e in parsed.entries[:DESCRIBED_TITLES]],
        "bozo": parsed.bozo_reason is not None,
        "error": None,
    }


def _read_capped(path: Path, max_bytes: int) -> bytes:
    # The same kind of cap a fetch has: a stray multi-gigabyte file must not fill memory.
    with path.open("rb") as file:
        body = file.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise OSError(f"larger than {max_bytes} bytes")
    return body


def _described_failure(error: str) -> dict[str, Any]:
    return {"entries": 0, "titles": [], "bozo": False, "error": error}


# --- XML through feedparser ------------------------------------------------------------------


def _parse_xml(body: bytes, headers: dict[str, str], base_url: str | None) -> ParsedFeed:
    # The fetch URL is not handed to feedparser (as Content-Location): it would join it with
    # the base of every element (a fifth of the parse) and resolve GUIDs against it, so a feed
    # that moved would change every item's identity. Links, enclosures and markup are made
    # absolute here, against the same base.
    headers.pop("content-location", None)
    if headers:
        # feedparser calls any HTTP response without a Content-Type bozo; XML without a
        # charset is read as the XML itself declares.
        headers.setdefault("content-type", "application/xml")
    # Our own nh3 pass (sanitise.py) cleans and resolves every fragment we keep, more strictly
    # than feedparser's sanitiser; running both cost a third of the parse time for nothing.
    try:
        parsed = feedparser.parse(
            body, response_headers=headers or None, sanitize_html=False, resolve_relative_uris=False
        )
    except (ValueError, LookupError) as exc:
        # feedparser decodes with whatever encoding the XML declares: a declaration with a
        # stray byte in its name ("\x80tf-8") raises UnicodeDecodeError or "embedded null".
        raise NotAFeedError(f"not a feed: unreadable encoding declaration ({exc})") from None
    bozo = _bozo_reason(parsed)
    if not parsed.entries and (_broken(parsed) or not parsed.get("version")):
        raise NotAFeedError(f"not a feed: {bozo or 'no feed elements found'}")
    feed = parsed.feed
    # Atom entries without an author inherit the feed's (RFC 4287, 4.2.1); RSS has no such rule.
    inherited = _xml_authors(feed) if str(parsed.get("version", "")).startswith("atom") else ()
    fields = (_xml_fields(raw, inherited) for raw in parsed.entries[:MAX_ENTRIES])
    base = base_url or _declared_base(feed.get("links") or [])
    return _feed(plain_text(feed.get("title")), _language(feed.get("language")), fields, base, bozo)


def _broken(parsed: Any) -> bool:
    """A real parse error, not one of the notes feedparser files under bozo too (an encoding
    override, a non-XML media type, an undeclared namespace)."""
    exc = parsed.get("bozo_exception")
    return bool(parsed.get("bozo")) and not isinstance(exc, feedparser.ThingsNobodyCaresAboutButMe)


def _bozo_reason(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}" if exc else "malformed feed"


def _declared_base(links: list[Any]) -> str | None:
    """Without a fetch URL (a local file), resolve relative links against the feed's own
    address as it declares it: its self link, else its home page."""
    by_rel = {link.get("rel"): link.get("href") for link in links if link.get("href")}
    return _web_base(by_rel.get("self"), by_rel.get("alternate"))


def _xml_fields(raw: Any, inherited_authors: tuple[str, ...]) -> _Fields:
    # dict.get skips FeedParserDict's key aliasing (e.g. updated -> published) and its warnings.
    return _Fields(
        guid=scrub(str(dict.get(raw, "id") or "")).strip(),
        link=str(dict.get(raw, "link") or ""),
        title=plain_text(dict.get(raw, "title")),
        summary=plain_text(dict.get(raw, "summary") or _first_content(raw)),
        bodies=_xml_bodies(raw),
        published=_struct_date(raw, "published_parsed", "created_parsed", "updated_parsed"),
        updated=_struct_date(raw, "updated_parsed"),
        authors=_xml_authors(raw) or inherited_authors,
        tags=tuple(str(t.get("term") or t.get("label") or "") for t in _list(raw, "tags")),
        enclosures=_xml_enclosures(raw),
        language=_xml_language(raw),
    )


def _list(raw: Any, key: str) -> list[Any]:
    value = dict.get(raw, key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _first_content(raw: Any) -> str:
    content = _list(raw, "content")
    return str(content[0].get("value", "")) if content else ""


def _xml_bodies(raw: Any) -> tuple[str, ...]:
    details = [*_list(raw, "content"), dict.get(raw, "summary_detail") or {}]
    return tuple(_as_html(d.get("value"), d.get("type")) for d in details if d.get("value"))


def _as_html(value: Any, media_type: Any) -> str:
    text = str(value)
    return html.escape(text) if media_type == "text/plain" else text


def _xml_enclosures(raw: Any) -> tuple[str, ...]:
    # feedparser keeps enclosures as links; `entry.enclosures` is computed by its aliasing.
    links = _list(raw, "links")
    return tuple(str(link.get("href") or "") for link in links if link.get("rel") == "enclosure")


def _xml_authors(obj: Any) -> tuple[str, ...]:
    # `author` repeats the first of `authors`, sometimes as "email (name)"; it is the fallback.
    names = tuple(n for n in (str(a.get("name") or "") for a in _list(obj, "authors")) if n)
    return names or tuple(filter(None, [str(dict.get(obj, "author") or "")]))


def _xml_language(raw: Any) -> str | None:
    details = [dict.get(raw, "title_detail"), dict.get(raw, "summary_detail")]
    for detail in [*details, *_list(raw, "content")]:
        if detail and detail.get("language"):
            return _language(detail["language"])
    return None


def _struct_date(raw: Any, *keys: str) -> datetime | None:
    for key in keys:
        value = dict.get(raw, key)
        if isinstance(value, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


# --- JSON Feed -------------------------------------------------------------------------------


def _parse_json(body: bytes, base_url: str | None) -> ParsedFeed:
    try:
        feed = jsonfeed.parse_json_feed(body)
    except jsonfeed.InvalidJsonFeed as exc:
        raise NotAFeedError(f"not a feed: {exc}") from None
    base = base_url or _web_base(feed.feed_url, feed.home_page_url)
    fields = (_json_fields(item) for item in feed.items)
    bozo = f"skipped {feed.skipped} items that are not objects" if feed.skipped else None
    return _feed(normalise(feed.title), _language(feed.language), fields, base, bozo)


def _json_fields(item: jsonfeed.JsonItem) -> _Fields:
    bodies = (item.content_html, html.escape(item.content_text), html.escape(item.summary))
    return _Fields(
        guid=scrub(item.id or ""),
        link=item.url or "",
        # JSON Feed titles, summaries and content_text are plain text by the spec.
        title=normalise(item.title),
        summary=normalise(item.summary or item.content_text) or plain_text(item.content_html),
        bodies=tuple(b for b in bodies if b),
        published=item.published,
        updated=item.modified,
        authors=item.authors,
        tags=item.tags,
        enclosures=item.attachments,
        language=_language(item.language),
    )


# --- One entry, whatever the format ----------------------------------------------------------


def _feed(
    title: str, language: str | None, fields: Iterable[_Fields], base: str | None, bozo: str | None
) -> ParsedFeed:
    entries = [e for e in (_entry(f, base, language) for f in fields) if e is not None]
    return ParsedFeed(
        title=title[:MAX_TITLE] or None, language=language, entries=entries, bozo_reason=bozo
    )


def _entry(f: _Fields, base: str | None, feed_language: str | None) -> ParsedEntry | None:
    title, summary = f.title[:MAX_TITLE], f.summary[:MAX_SUMMARY]
    if not title and not summary:
        return None
    guid = f.guid[:MAX_KEY] or None
    link = canonical_url(resolve(base, f.link))
    content_hash = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    dedupe_key = guid or link or f"sha256:{content_hash}"
    return ParsedEntry(
        dedupe_key=dedupe_key[:MAX_KEY],
        guid=guid,
        url=link,
        title=title or summary[:FALLBACK_TITLE],
        summary=summary,
        language=f.language or feed_language,
        published_at=f.published,
        content_hash=content_hash,
        content_html=sanitise_html(max(f.bodies, key=len, default=""), base),
        author=_author(f.authors),
        updated_at=f.updated,
        categories=_categories(f.tags),
        enclosures=_enclosures(f.enclosures, base),
    )


def _author(names: tuple[str, ...]) -> str | None:
    unique = dict.fromkeys(n for n in (normalise(name) for name in names) if n)
    return ", ".join(unique)[:MAX_AUTHOR] or None


def _categories(terms: tuple[str, ...]) -> tuple[str, ...]:
    # Case-insensitive: "Politics" and "politics" are one category; the first spelling wins.
    unique: dict[str, str] = {}
    for term in (normalise(t)[:MAX_CATEGORY] for t in terms):
        if term and term.casefold() not in unique:
            unique[term.casefold()] = term
    return tuple(unique.values())[:MAX_CATEGORIES]


def _enclosures(urls: tuple[str, ...], base: str | None) -> tuple[str, ...]:
    resolved = (resolve(base, url) for url in urls)
    web = (u for u in resolved if u and scheme(u) in ("http", "https") and len(u) <= MAX_KEY)
    return tuple(dict.fromkeys(web))[:MAX_ENCLOSURES]


def _language(value: Any) -> str | None:
    return normalise(str(value or ""))[:MAX_LANGUAGE] or None


# --- URLs ------------------------------------------------------------------------------------


def _web_base(*candidates: str | None) -> str | None:
    placed = (absolute(url) for url in candidates)
    return next((url for url in placed if url and scheme(url) != "mailto"), None)


def canonical_url(url: str | None) -> str | None:
    """Drop tracking parameters and the fragment so the same article has one URL."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
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
