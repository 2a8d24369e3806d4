"""Ops alerts for admins: feeds failing, queues backed up, workers silent."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from tracker.config import Settings
from tracker.redact import redact_optional, redact_text
from tracker.storage import feeds, heartbeats, outbox


@dataclass(frozen=True)
class OpsLimits:
    backlog: int
    heartbeat_stale_s: float
    feed_failing_h: float


def limits(s: Settings) -> OpsLimits:
    return OpsLimits(s.ops_backlog_limit, s.heartbeat_stale_s, s.ops_feed_failing_h)


def check(
    conn: psycopg.Connection,
    backlog: Mapping[str, int],
    lim: OpsLimits,
    now: datetime | None = None,
) -> int:
    """Queue an ops alert for each problem found; each problem alerts once per episode."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        return (
            _silent_workers(conn, lim.heartbeat_stale_s)
            + _backlogs(conn, {**backlog, "alert outbox": outbox.backlog(conn)}, lim.backlog, now)
            + _failing_feeds(conn, lim.feed_failing_h, now)
        )


def _silent_workers(conn: psycopg.Connection, stale_s: float) -> int:
    queued = 0
    for beat in heartbeats.heartbeats(conn):
        if beat.age_s <= stale_s:
            continue
        # Keyed by the last heartbeat: one alert per outage, a new one after a recovery.
        queued += outbox.queue_ops(
            conn,
            f"heartbeat:{beat.queue}:{beat.beat_at.isoformat()}",
            f"No worker heartbeat on queue {beat.queue} for {beat.age_s / 60:.0f} min",
            f"No worker has reported on the {beat.queue!r} queue since "
            f"{beat.beat_at:%Y-%m-%d %H:%M:%S %Z} (last seen: {beat.hostname}).\n\n"
            "Check that the worker process for this queue is running.\n",
        )
    return queued


def _backlogs(conn: psycopg.Connection, sizes: Mapping[str, int], limit: int, now: datetime) -> int:
    queued = 0
    hour = now.astimezone(UTC).strftime("%Y-%m-%dT%H")
    for name, size in sorted(sizes.items()):
        if size <= limit:
            continue
        # At most one alert per queue per hour while the backlog lasts.
        queued += outbox.queue_ops(
            conn,
            f"backlog:{name}:{hour}",
            f"Queue backlog: {size} waiting on {name}",
            f"{size} messages are waiting on {name}, over the limit of {limit}.\n\n"
            "Workers may be down or too few for the load.\n",
        )
    return queued


def _failing_feeds(conn: psycopg.Connection, failing_h: float, now: datetime) -> int:
    queued = 0
    for feed in feeds.list_all(conn):
        since = feed.failing_since
        if not feed.enabled or since is None or now - since < timedelta(hours=failing_h):
            continue
        queued += outbox.queue_ops(
            conn,
            f"feed-failing:{feed.id}:{since.isoformat()}",
            f"Feed failing: {feed.title or redact_text(feed.url)}",
            f"The feed {redact_text(feed.url)} (id {feed.id}) has been failing since "
            f"{since:%Y-%m-%d %H:%M %Z}.\n\nLast error: {redact_optional(feed.last_error)}\n\n"
            "It is disabled automatically if it keeps failing.\n",
        )
    return queued
