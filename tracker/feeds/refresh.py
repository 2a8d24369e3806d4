"""Refresh one leased feed: fetch, parse, store, record the outcome. The orchestrator of ingest."""

import random
from dataclasses import dataclass

import httpx
import psycopg
import structlog

from tracker.domain import Feed
from tracker.feeds.fetch import FetchError, FetchPolicy, FetchResult, fetch
from tracker.feeds.parse import NotAFeedError, ParsedFeed, parse
from tracker.storage import feeds, items
from tracker.storage.feeds import Lease

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str
    new_item_ids: list[int]
    error: str | None = None


def refresh_feed(
    conn: psycopg.Connection, lease: Lease, policy: FetchPolicy, max_backoff_s: int
) -> Outcome:
    feed = _leased_feed(conn, lease)
    if feed is None:
        return Outcome(status="lease_lost", new_item_ids=[])
    try:
        result = fetch(feed.url, policy, etag=feed.etag, last_modified=feed.last_modified)
        parsed = (
            None if result.not_modified else parse(result.body, result.headers, result.final_url)
        )
    except Exception as exc:  # noqa: BLE001 - whatever a feed does, it is recorded on the feed
        return _record_failure(conn, lease, feed, exc, max_backoff_s)
    return _store(conn, lease, feed, result, parsed)


def _leased_feed(conn: psycopg.Connection, lease: Lease) -> Feed | None:
    # A redelivered or stale message holds an old token: it must not touch the feed.
    with conn.transaction():
        if not feeds.holds_lease(conn, lease):
            return None
        return feeds.get(conn, lease.feed_id)


def _store(
    conn: psycopg.Connection,
    lease: Lease,
    feed: Feed,
    result: FetchResult,
    parsed: ParsedFeed | None,
) -> Outcome:
    with conn.transaction():
        new_ids = items.upsert(conn, feed.id, parsed.entries) if parsed else []
        status = "not_modified" if parsed is None else "ok" if not parsed.bozo_reason else "ok_bozo"
        feeds.record_success(
            conn,
            lease,
            title=parsed.title if parsed else None,
            etag=result.etag or feed.etag,
            last_modified=result.last_modified or feed.last_modified,
            status=status,
        )
    log.info("feed refreshed", feed_id=feed.id, status=status, new_items=len(new_ids))
    return Outcome(status=status, new_item_ids=new_ids)


def _record_failure(
    conn: psycopg.Connection, lease: Lease, feed: Feed, exc: Exception, max_backoff_s: int
) -> Outcome:
    status, message, retry_after = _describe(exc)
    backoff = min(max_backoff_s, 60 * 2 ** min(feed.error_count, 16))
    # Jitter spreads retries so feeds that broke together do not retry together.
    retry_in = retry_after if retry_after is not None else backoff * random.uniform(0.8, 1.2)  # noqa: S311
    with conn.transaction():
        feeds.record_failure(conn, lease, status=status, error=message, retry_in_s=retry_in)
    log.warning("feed failed", feed_id=feed.id, status=status, error=message)
    return Outcome(status=status, new_item_ids=[], error=message)


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
