"""Managing feeds, shared by `tracker feeds ...` and the Feeds page and API: find a feed URL
(discovery through the SSRF-guarded fetch), add, import and export OPML, poll now, disable and
enable. Every change is written to the audit log in the caller's transaction."""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg
from pydantic import BaseModel, Field, ValidationError

from tracker import domain
from tracker.config import Settings
from tracker.domain import FEED_KINDS, MAX_LANGUAGE_CHARS, Feed, FeedKind
from tracker.ingest import opml
from tracker.ingest.discover import DiscoveryError, discover
from tracker.ingest.fetch import FetchError, FetchPolicy, check_destination, fetch, parse_networks
from tracker.redact import redact_text
from tracker.storage import audit, feeds

MAX_TITLE_CHARS = 300
# Reserved never to resolve (RFC 2606): such names are not looked up when a feed is added.
RESERVED_SUFFIXES = (".example", ".invalid", ".test")


class FeedInputError(ValueError):
    """What is wrong with a feed to add, in words for the user."""


# A feed to add, as the API's body and the Feeds page's form give it. No docstring: it would
# become the schema's description; the class name is the API's OpenAPI component name.
class FeedIn(BaseModel):
    url: str = Field(max_length=2000, description="The feed's URL, or a site's with `discover`.")
    discover: bool = Field(
        default=False, description="The URL is a site: add the first feed it links to or serves."
    )
    kind: FeedKind = "other"
    title: str | None = Field(default=None, max_length=300)
    language: str | None = Field(default=None, max_length=MAX_LANGUAGE_CHARS, examples=["ro"])
    tags: list[str] = Field(default_factory=list, max_length=50)


def feed_in(fields: dict[str, object]) -> FeedIn:
    """FeedIn from a form's fields; FeedInputError, in words for the user, when one is invalid
    (the API gets FastAPI's 422 for the same model instead)."""
    try:
        return FeedIn.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        if name == "kind":
            check_kind(str(first["input"]))  # the words the CLI and the page have always used
        raise FeedInputError(f"{name}: {first['msg']}") from None


def new_feed_from(given: FeedIn, settings: Settings) -> feeds.NewFeed:
    """The feed to store for a valid FeedIn (its URL before discovery); FeedInputError when its
    language is not a code."""
    return new_feed(given.url, given.kind, given.title, given.language, given.tags, settings)


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
    code = language_code(language)
    return feeds.NewFeed(
        url=url,
        kind=kind,
        title=(title or "").strip()[:MAX_TITLE_CHARS] or None,
        language=code or None,
        tags=opml.split_tags(",".join(tags)),
        min_interval_s=settings.poll_min_interval_s,
        max_interval_s=settings.poll_max_interval_s,
    )


def language_code(language: str | None) -> str:
    """A feed's language as stored: a code like en or pt-br (domain.language_code), or "" for
    none; FeedInputError when it is not a code."""
    if not (language or "").strip():
        return ""
    code = domain.language_code(language)
    if code is None:
        raise FeedInputError(f"{language!r} is not a language code like en or ro")
    return code


def feed_url(url: str, find: bool, settings: Settings) -> FoundUrl:
    """The URL to register: `url` itself, or with `find` the first feed its site links to."""
    if not url.startswith(("http://", "https://")):
        raise FeedInputError(f"feed URL must start with http:// or https://, not {url!r}")
    try:
        urlsplit(url).port  # noqa: B018 - reading the port is what checks it
    except ValueError as exc:
        # As discovery says it.
        raise FeedInputError(f"not a valid URL: {redact_text(url)!r}") from exc
    policy = fetch_policy(settings)
    if not find:
        check_reachable(url, policy)
        return FoundUrl(url)

    def get(candidate: str) -> tuple[bytes, str]:
        # The same guarded fetch as polling: discovery must not reach private addresses either.
        result = fetch(candidate, policy)
        return result.body, result.headers.get("content-type", "")

    try:
        found = discover(url, get)
    except (DiscoveryError, FetchError) as exc:
        raise FeedInputError(str(exc)) from exc
    # A site may link to a feed anywhere, the cloud's metadata address included.
    check_reachable(found[0], policy)
    return FoundUrl(found[0], found)


def check_reachable(url: str, policy: FetchPolicy) -> None:
    """Refuse now a feed the fetch guard would refuse at every poll: a private, loopback or
    link-local address not allowed by TRACKER_FETCH_ALLOW_NETWORKS. A name that does not
    resolve yet is accepted (DNS may lag); the fetch checks again at every connect."""
    host = (urlsplit(url).hostname or "").lower()
    if host.endswith(RESERVED_SUFFIXES):
        return
    try:
        check_destination(url, policy)
    except FetchError as exc:
        if exc.status != "unreachable":
            raise FeedInputError(str(exc)) from exc


def add(
    conn: psycopg.Connection, new: feeds.NewFeed, settings: Settings, actor: str
) -> tuple[Feed, bool]:
    if new.min_interval_s > new.max_interval_s:
        raise FeedInputError("the minimum interval must not exceed the maximum interval")
    feed, created = feeds.add(conn, new, settings.poll_interval_s)
    if created:
        audit.record(conn, actor, "feed.add", f"feed:{feed.id}", {"url": redact_text(feed.url)})
    return feed, created


def edit(
    conn: psycopg.Connection, feed_id: int, changed: feeds.NewFeed, settings: Settings, actor: str
) -> bool:
    """Save an admin's edit form (URL, kind, title, language, tags); False when there is no
    such feed, FeedInputError when a field is wrong or the URL is another feed's."""
    if feeds.get(conn, feed_id) is None:
        return False
    if feeds.url_taken(conn, changed.url, feed_id):
        raise FeedInputError("another feed already has this URL")
    feeds.set_url(conn, feed_id, changed.url)
    feeds.update(
        conn,
        feed_id,
        kind=changed.kind,
        title=changed.title or "",
        language=changed.language or "",
        tags=changed.tags,
    )
    audit.record(conn, actor, "feed.edit", f"feed:{feed_id}", {"url": redact_text(changed.url)})
    return True


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
    policy = fetch_policy(settings)
    # Feeds at a literal address the fetch would refuse are skipped with a reason; names are
    # not resolved here (thousands of lookups), the fetch checks them at every connect.
    refused = [(f, _literal_refusal(f.url, policy)) for f in parsed.feeds]
    problems = [*parsed.problems, *(reason for _, reason in refused if reason)]
    new = [
        feeds.NewFeed(
            url=f.url,
            kind=f.kind or kind,
            title=f.title,
            # As the file has it (checked by the parser): stored as the forms store it.
            language=domain.language_code(f.language),
            tags=f.tags,
            min_interval_s=settings.poll_min_interval_s,
            max_interval_s=settings.poll_max_interval_s,
        )
        for f, reason in refused
        if reason is None
    ]
    added = feeds.add_many(conn, new, settings.poll_interval_s)
    audit.record(conn, actor, "feeds.import_opml", source, {"added": added})
    return ImportReport(added, len(new) - added, problems)


def _literal_refusal(url: str, policy: FetchPolicy) -> str | None:
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host.lower() != "localhost":
            return None
    try:
        check_reachable(url, policy)
    except FeedInputError as exc:
        return f"{redact_text(url)}: {exc}"
    return None


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
