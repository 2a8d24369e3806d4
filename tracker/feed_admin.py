"""Managing feeds, shared by `tracker feeds ...` and the Feeds page and API: find a feed URL
(discovery through the SSRF-guarded fetch), add, import and export OPML, poll now, disable and
enable. Every change is written to the audit log in the caller's transaction."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from tracker.config import Settings
from tracker.domain import FEED_KINDS, Feed
from tracker.feeds import opml
from tracker.feeds.discover import DiscoveryError, discover
from tracker.feeds.fetch import FetchError, FetchPolicy, fetch, parse_networks
from tracker.storage import audit, feeds

LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
MAX_TITLE_CHARS = 300


class FeedInputError(ValueError):
    """What is wrong with a feed to add, in words for the user."""


@dataclass(frozen=True)
class FoundUrl:
    url: str
    candidates: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportReport:
    added: int
    already: int
    problems: list[str]


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        timeout_s=settings.fetch_timeout_s,
        max_bytes=settings.fetch_max_bytes,
        user_agent=settings.user_agent,
        allow_networks=parse_networks(settings.fetch_allow_networks),
    )


def check_kind(kind: str) -> None:
    if kind not in FEED_KINDS:
        raise FeedInputError(f"kind must be one of {', '.join(FEED_KINDS)}, not {kind!r}")


def new_feed(
    url: str,
    kind: str,
    title: str | None,
    language: str | None,
    tags: Sequence[str],
    settings: Settings,
) -> feeds.NewFeed:
    """A feed typed by a user (page or API); FeedInputError when a field is invalid."""
    check_kind(kind)
    code = (language or "").strip().lower()
    if code and not LANGUAGE.match(code):
        raise FeedInputError(f"{language!r} is not a language code like en or ro")
    return feeds.NewFeed(
        url=url,
        kind=kind,
        title=(title or "").strip()[:MAX_TITLE_CHARS] or None,
        language=code or None,
        tags=opml.split_tags(",".join(tags)),
        min_interval_s=settings.poll_min_interval_s,
        max_interval_s=settings.poll_max_interval_s,
    )


def feed_url(url: str, find: bool, settings: Settings) -> FoundUrl:
    """The URL to register: `url` itself, or with `find` the first feed its site links to."""
    if not url.startswith(("http://", "https://")):
        raise FeedInputError(f"feed URL must start with http:// or https://, not {url!r}")
    if not find:
        return FoundUrl(url)
    policy = fetch_policy(settings)

    def get(candidate: str) -> tuple[bytes, str]:
        # The same guarded fetch as polling: discovery must not reach private addresses either.
        result = fetch(candidate, policy)
        return result.body, result.headers.get("content-type", "")

    try:
        found = discover(url, get)
    except (DiscoveryError, FetchError) as exc:
        raise FeedInputError(str(exc)) from exc
    return FoundUrl(found[0], found)


def add(
    conn: psycopg.Connection, new: feeds.NewFeed, settings: Settings, actor: str
) -> tuple[Feed, bool]:
    if new.min_interval_s > new.max_interval_s:
        raise FeedInputError("the minimum interval must not exceed the maximum interval")
    feed, created = feeds.add(conn, new, settings.poll_interval_s)
    if created:
        audit.record(conn, actor, "feed.add", f"feed:{feed.id}", {"url": feed.url})
    return feed, created


def import_opml(
    conn: psycopg.Connection,
    data: bytes,
    kind: str,
    settings: Settings,
    actor: str,
    source: str,
    max_bytes: int = opml.MAX_OPML_BYTES,
) -> ImportReport:
    """Register every feed of an OPML document; opml.OpmlError (nothing added) when malformed."""
    parsed = opml.parse_opml(data, max_bytes)
    new = [
        feeds.NewFeed(
            url=f.url,
            kind=f.kind or kind,
            title=f.title,
            language=f.language,
            tags=f.tags,
            min_interval_s=settings.poll_min_interval_s,
            max_interval_s=settings.poll_max_interval_s,
        )
        for f in parsed.feeds
    ]
    added = feeds.add_many(conn, new, settings.poll_interval_s)
    audit.record(conn, actor, "feeds.import_opml", source, {"added": added})
    return ImportReport(added, len(new) - added, parsed.problems)


def export_opml(conn: psycopg.Connection) -> tuple[bytes, int]:
    """Every feed as an OPML document, and how many feeds it holds."""
    found = feeds.list_all(conn)
    data = opml.export_opml(
        opml.OpmlFeed(
            url=f.url, title=f.title, tags=tuple(f.tags), kind=f.kind, language=f.language
        )
        for f in found
    )
    return data, len(found)


def set_enabled(conn: psycopg.Connection, feed_id: int, enabled: bool, actor: str) -> bool:
    """False when there is no such feed."""
    if not feeds.set_enabled(conn, feed_id, enabled, reason="disabled by hand"):
        return False
    action = "feed.enable" if enabled else "feed.disable"
    audit.record(conn, actor, action, f"feed:{feed_id}")
    return True


def poll_now(conn: psycopg.Connection, feed_id: int, actor: str) -> bool:
    """Make the feed due at the next dispatch; False when there is no such enabled feed."""
    if not feeds.poll_now(conn, feed_id):
        return False
    audit.record(conn, actor, "feed.poll_now", f"feed:{feed_id}")
    return True
