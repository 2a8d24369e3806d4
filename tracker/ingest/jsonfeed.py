"""Read JSON Feed 1.0 / 1.1 (https://jsonfeed.org) into plain fields.

feedparser 6 cannot read JSON, so this small reader does. It only checks the shape and pulls the
fields out; sanitising, identity and size limits on text are applied by `tracker.ingest.parse`,
the same way for JSON and XML feeds.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

VERSION_PREFIX = "https://jsonfeed.org/version/1"
JSON_CONTENT_TYPES = ("application/feed+json", "application/json")
UTF8_BOM = b"\xef\xbb\xbf"
# Bounds on what one feed can make us hold, whatever the body cap lets through.
MAX_ITEMS = 5000
MAX_LIST = 50


class InvalidJsonFeed(ValueError):
    """The body is not a JSON Feed we can read."""


@dataclass(frozen=True)
class JsonItem:
    id: str | None
    url: str | None
    title: str
    content_html: str
    content_text: str
    summary: str
    published: datetime | None
    modified: datetime | None
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    attachments: tuple[str, ...]
    language: str | None


@dataclass(frozen=True)
class JsonFeed:
    title: str
    language: str | None
    home_page_url: str | None
    feed_url: str | None
    items: list[JsonItem]
    skipped: int


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    """A JSON media type, or a body that opens with `{`. A body opening with `<` stays XML even
    when the server calls it JSON: mislabelled RSS is common, JSON that starts with `<` is not."""
    start = body[:512].removeprefix(UTF8_BOM).lstrip()
    if start.startswith(b"{"):
        return True
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in JSON_CONTENT_TYPES and not start.startswith(b"<")


def parse_json_feed(body: bytes) -> JsonFeed:
    document = _load(body)
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith(VERSION_PREFIX):
        raise InvalidJsonFeed(f"JSON without a JSON Feed version (got {_short(version)})")
    raw_items = document.get("items", [])
    if not isinstance(raw_items, list):
        raise InvalidJsonFeed("JSON Feed whose items is not a list")
    feed_authors = _authors(document)
    items = [_item(raw, feed_authors) for raw in raw_items[:MAX_ITEMS] if isinstance(raw, dict)]
    return JsonFeed(
        title=_string(document.get("title")),
        language=_string(document.get("language")) or None,
        home_page_url=_string(document.get("home_page_url")) or None,
        feed_url=_string(document.get("feed_url")) or None,
        items=items,
        skipped=len(raw_items[:MAX_ITEMS]) - len(items),
    )


def _load(body: bytes) -> dict[str, Any]:
    try:
        # json.loads detects UTF-8 (with or without BOM), UTF-16 and UTF-32 by itself.
        document = json.loads(body)
    except RecursionError:
        raise InvalidJsonFeed("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJsonFeed(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidJsonFeed("JSON whose top level is not an object")
    return document


def _item(raw: dict[str, Any], feed_authors: tuple[str, ...]) -> JsonItem:
    return JsonItem(
        # The spec says string, but numbers are common in the wild; they identify just as well.
        id=_string(raw.get("id"), numbers=True) or None,
        url=_string(raw.get("url")) or _string(raw.get("external_url")) or None,
        title=_string(raw.get("title")),
        content_html=_string(raw.get("content_html")),
        content_text=_string(raw.get("content_text")),
        summary=_string(raw.get("summary")),
        published=parse_rfc3339(raw.get("date_published")),
        modified=parse_rfc3339(raw.get("date_modified")),
        # Items without authors take the feed's (spec: "the top-level authors ... are the
        # authors of the item").
        authors=_authors(raw) or feed_authors,
        tags=tuple(t for t in (_string(v) for v in _list(raw.get("tags"))) if t),
        attachments=_attachments(raw.get("attachments")),
        language=_string(raw.get("language")) or None,
    )


def _authors(obj: dict[str, Any]) -> tuple[str, ...]:
    # 1.1 has an `authors` list; 1.0 had a single `author` object, still seen in 1.1 feeds.
    people = _list(obj.get("authors")) or [obj.get("author")]
    names = (_string(p.get("name")) for p in people if isinstance(p, dict))
    return tuple(n for n in names if n)


def _attachments(value: Any) -> tuple[str, ...]:
    urls = (_string(a.get("url")) for a in _list(value) if isinstance(a, dict))
    return tuple(u for u in urls if u)


def parse_rfc3339(value: Any) -> datetime | None:
    """RFC 3339 date to an aware UTC datetime; anything unreadable is None. A date without an
    offset is taken as UTC rather than dropped."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 or 9999 can overflow when shifted to UTC
        return None


def _string(value: Any, numbers: bool = False) -> str:
    if isinstance(value, str):
        return value.strip()
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _list(value: Any) -> list[Any]:
    return value[:MAX_LIST] if isinstance(value, list) else []


def _short(value: Any) -> str:
    return repr(value)[:80]
