"""Refresh one leased feed: fetch, parse, store, schedule. The orchestrator of ingestion."""

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import timedelta

import httpx
import psycopg
import structlog

from tracker import metrics
from tracker.config import Settings
from tracker.domain import Feed, ParsedEntry
from tracker.ingest import schedule
from tracker.ingest.dedupe import text_fingerprint
from tracker.ingest.fetch import FetchError, FetchPolicy, FetchResult, fetch, parse_networks
from tracker.ingest.languages import with_language
from tracker.ingest.parse import NotAFeedError, ParsedFeed, parse
from tracker.redact import redact_text
from tracker.storage import feeds, items, outbox
from tracker.storage.feeds import Lease, Success

log = structlog.get_logger(__name__)

# A started fetch holds its feed for the fetch's deadline plus this, then dispatch may lease it
# again: the time to parse and store the largest body a fetch takes (TRACKER_FETCH_MAX_BYTES;
# 10 MB of RSS, 8,531 items, parsed in 1.9 s and stored in 4.2 s here), five times over for a
# busy machine. A fetch that outlives it is harmless: its items are upserted by their keys and
# the new lease's fetch finds them stored.
STORE_ALLOWANCE_S = 30.0


@dataclass(frozen=True)
class RefreshConfig:
    policy: FetchPolicy
    max_backoff_s: int
    disable_after: timedelta

    @property
    def running_lease_s(self) -> float:
        """How long a started fetch holds its feed: its deadline, then parsing and storing."""
        return self.policy.timeout_s + STORE_ALLOWANCE_S


@dataclass(frozen=True)
class Outcome:
    status: str
    new_item_ids: list[int]
    error: str | None = None


def refresh_config(s: Settings) -> RefreshConfig:
    policy = FetchPolicy(
        timeout_s=s.fetch_timeout_s,
        max_bytes=s.fetch_max_bytes,
        user_agent=s.user_agent,
        allow_networks=parse_networks(s.fetch_allow_networks),
    )
    return RefreshConfig(
        policy=policy,
        max_backoff_s=s.max_backoff_s,
        disable_after=timedelta(hours=s.disable_after_failing_h),
    )


def refresh_feed(conn: psycopg.Connection, lease: Lease, config: RefreshConfig) -> Outcome:
    outcome = _refresh(conn, lease, config)
    metrics.feed_refreshed(outcome.status, len(outcome.new_item_ids))
    return outcome


def _refresh(conn: psycopg.Connection, lease: Lease, config: RefreshConfig) -> Outcome:
    # A redelivered or stale message holds an old token: it must not touch the feed.
    feed = feeds.start_fetch(conn, lease, config.running_lease_s)
    if feed is None:
        return Outcome(status="lease_lost", new_item_ids=[])
    try:
        result = fetch(feed.url, config.policy, etag=feed.etag, last_modified=feed.last_modified)
        body_hash = None if result.not_modified else hashlib.sha256(result.body).hexdigest()
        unchanged = result.not_modified or body_hash == feed.body_hash
        parsed = None if unchanged else parse(result.body, result.headers, result.final_url)
    except Exception as exc:  # noqa: BLE001 - whatever a feed does, it is recorded on the feed
        return _record_failure(conn, lease, feed, exc, config)
    return _store(conn, lease, feed, result, parsed, body_hash or feed.body_hash)


def _store(
    conn: psycopg.Connection,
    lease: Lease,
    feed: Feed,
    result: FetchResult,
    parsed: ParsedFeed | None,
    body_hash: str | None,
) -> Outcome:
    with conn.transaction():
        entries = [_prepared(e, feed.language) for e in parsed.entries] if parsed else []
        new_ids = items.upsert(conn, feed.id, entries, link_copies=True)
        status = _status(result, parsed)
        # Only new items change the posting rhythm; an unchanged feed skips the query.
        dates = items.published_dates(conn, feed.id) if new_ids else []
        interval = schedule.next_interval(
            dates,
            result.cache_hint_s,
            feed.min_interval_s,
            feed.max_interval_s,
            feed.poll_interval_s,
        )
        feeds.record_success(
            conn,
            lease,
            Success(
                status=status,
                title=parsed.title if parsed else None,
                etag=result.etag or feed.etag,
                last_modified=result.last_modified or feed.last_modified,
                body_hash=body_hash,
                interval_s=interval,
                new_url=_moved_to(conn, feed, result),
            ),
        )
    log.info(
        "feed refreshed",
        feed_id=feed.id,
        status=status,
        new_items=len(new_ids),
        next_poll_s=interval,
    )
    return Outcome(status=status, new_item_ids=new_ids)


def _status(result: FetchResult, parsed: ParsedFeed | None) -> str:
    if result.not_modified:
        return "not_modified"
    if parsed is None:
        return "unchanged"
    return "ok_bozo" if parsed.bozo_reason else "ok"


def _prepared(entry: ParsedEntry, feed_language: str | None) -> ParsedEntry:
    entry = with_language(entry, feed_language)
    return dataclasses.replace(entry, text_hash=text_fingerprint(entry.title, entry.summary))


def _moved_to(conn: psycopg.Connection, feed: Feed, result: FetchResult) -> str | None:
    """The new URL after permanent redirects only (301/308 all the way), unless another feed
    already has it."""
    url = result.permanent_url
    if url is None or url == feed.url or feeds.url_taken(conn, url, feed.id):
        return None
    log.info("feed moved permanently", feed_id=feed.id, old=feed.url, new=url)
    return url


def _record_failure(
    conn: psycopg.Connection, lease: Lease, feed: Feed, exc: Exception, config: RefreshConfig
) -> Outcome:
    status, message, retry_after = _describe(exc)
    retry_in = (
        retry_after
        if retry_after is not None
        else schedule.backoff(feed.error_count, config.max_backoff_s)
    )
    with conn.transaction():
        disabled = feeds.record_failure(
            conn,
            lease,
            status=status,
            error=message,
            retry_in_s=retry_in,
            disable_after=config.disable_after,
            gone=status == "gone",
        )
        if disabled:
            _queue_ops_alert(conn, feed, message)
    log.warning(
        "feed failed",
        feed_id=feed.id,
        status=status,
        error=message,
        disabled=disabled,
        retry_in_s=round(retry_in),
    )
    return Outcome(status=status, new_item_ids=[], error=message)


def _queue_ops_alert(conn: psycopg.Connection, feed: Feed, message: str) -> None:
    """Tell the ops subscribers (every admin while there are none) in the same transaction
    that disabled the feed."""
    outbox.queue_ops(
        conn,
        f"feed-disabled:{feed.id}:{feed.failing_since or 'gone'}",
        f"Feed disabled: {feed.title or redact_text(feed.url)}",
        f"The feed {redact_text(feed.url)} (id {feed.id}) was disabled.\n\n"
        f"Last error: {redact_text(message)}\n\n"
        f"Re-enable it with `tracker feeds enable {feed.id}` once it is fixed.\n",
    )


def _describe(exc: Exception) -> tuple[str, str, float | None]:
    if isinstance(exc, FetchError):
        return exc.status, str(exc), exc.retry_after_s
    if isinstance(exc, NotAFeedError):
        return "not_a_feed", str(exc), None
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", f"timed out: {exc}", None
    if isinstance(exc, httpx.ConnectError):
        return "unreachable", f"cannot connect: {exc}", None
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL | ValueError):
        return "error", f"{type(exc).__name__}: {exc}", None
    log.exception("unexpected error while refreshing a feed")
    return "error", f"{type(exc).__name__}: {exc}", None
