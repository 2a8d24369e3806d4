"""Thin tasks: ids in, one stage of work, commit, then enqueue the next stage."""

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from tracker.backoff import backoff
from tracker.config import get_settings
from tracker.pipeline import alert_ops, alerts, classify, pairing, retention, training
from tracker.pipeline.model_registry import item_classifier, pair_scorer
from tracker.pipeline.refresh import refresh_config, refresh_feed
from tracker.runtime import broker
from tracker.storage import db, feeds, heartbeats
from tracker.storage.feeds import Lease
from workers.app import app

log = structlog.get_logger(__name__)

# Items per classify or pair message. A feed's new items go in messages of this size. The
# sweeper re-queues items fetched more than 60 s ago and still unclassified once the classify
# queue is empty, and a task at work is not in the queue: a fact-checker's first poll of 1,000
# items as one message (about 80 ms an item for embedding alone, on one core here) would
# leave the queue empty while it ran, and its items would be queued again. As 20 messages,
# those waiting keep the queue a backlog, which the sweeper gives its longer grace.
ITEMS_PER_MESSAGE = 50
# At most this many items per stage per sweep.
SWEEP_LIMIT = 20 * ITEMS_PER_MESSAGE
# Database errors a later attempt gets past: a deadlock or serialization failure (psycopg's
# TransactionRollback errors, OperationalErrors too), a connection lost or refused while the
# server restarts, no connection free in the pool (PoolTimeout). Retried this many times, 1 s
# apart and doubling, jittered; what still fails waits for the sweeper.
TRANSIENT = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.OperationalError,
)
RETRIES = 5
RETRY_BASE_S = 1.0
RETRY_MAX_S = 60.0
# An interrupted alert batch is recorded once the database is back, tried for about two
# minutes (1 + 2 + 4 + ... s, at most RETRY_MAX_S apart).
SETTLE_ATTEMPTS = 8


_pool_lock = threading.Lock()
_pools: list[ConnectionPool] = []


def _pool() -> ConnectionPool:
    # Created on first use, so a prefork child opens its own connections after the fork. The
    # lock stops threads-pool workers from racing to open (and then leak) several pools.
    with _pool_lock:
        if not _pools:
            url = get_settings().database_url
            assert url is not None
            _pools.append(db.open_pool(url.get_secret_value()))
        return _pools[0]


@app.task(name="rt.dispatch_due_feeds")
def dispatch_due_feeds() -> int:
    # Never more than a batch of fetches waiting: a leased feed's message then waits behind at
    # most DISPATCH_BATCH others, which its queue lease (TRACKER_FETCH_LEASE_S) is sized for.
    room = feeds.DISPATCH_BATCH - _queue_lengths()["queue fetch"]
    if room <= 0:
        return 0
    with _pool().connection() as conn, conn.transaction():
        s = get_settings()
        leases = feeds.claim_due(conn, room, s.fetch_lease_s, s.fetch_per_host)
    for sent, lease in enumerate(leases):
        try:
            fetch_feed.delay(lease.feed_id, str(lease.token))
        except Exception as exc:  # noqa: BLE001 - whatever stopped the send, the feeds go back
            # The broker stayed away: the leases not sent would hold their feeds for the whole
            # queue lease with no fetch coming (a Redis restart under load left 68 of 200).
            with _pool().connection() as conn:
                feeds.release(conn, leases[sent:])
            log.warning("fetches not queued", error=str(exc), given_back=len(leases) - sent)
            return sent
    return len(leases)


@app.task(name="rt.fetch_feed")
def fetch_feed(feed_id: int, lease_token: str) -> int:
    config = refresh_config(get_settings())
    with _pool().connection() as conn:
        outcome = refresh_feed(conn, Lease(feed_id, UUID(lease_token)), config)
    new = outcome.new_item_ids
    for start in range(0, len(new), ITEMS_PER_MESSAGE):
        classify_items.delay(new[start : start + ITEMS_PER_MESSAGE])
    return len(outcome.new_item_ids)


@contextlib.contextmanager
def _retry_transient(task: Any) -> Iterator[None]:
    """Send the task again, after a backoff, when it met a TRANSIENT error. Its stage is one
    transaction, rolled back by then, and idempotent: the new message redoes it once (acks_late
    acks this one after the new one is sent). Outside `_pool().connection()`: a connection
    that died is back in the pool by then, which discards it (and checks idle ones before
    handing them out), so the retry gets a working one."""
    try:
        yield
    except TRANSIENT as exc:
        wait_s = backoff(task.request.retries, RETRY_BASE_S, RETRY_MAX_S)
        raise task.retry(exc=exc, countdown=wait_s, max_retries=RETRIES) from exc


@app.task(name="rt.classify_items", bind=True)
def classify_items(self: Any, item_ids: list[int]) -> int:
    s = get_settings()
    with _retry_transient(self), _pool().connection() as conn:
        classified = classify.classify_items(
            conn, item_ids, s.rumour_alert_min_probability, s.public_url, s.pair_claim_min_rumour
        )
    # Pair even when a redelivery classified nothing new: pairing is idempotent too.
    pair_items.delay(item_ids)
    return len(classified)


@app.task(name="rt.pair_items", bind=True)
def pair_items(self: Any, item_ids: list[int]) -> int:
    s = get_settings()
    with _retry_transient(self), _pool().connection() as conn:
        config = pairing.config_for(s, item_classifier(conn).version)
        return pairing.pair_items(conn, item_ids, pair_scorer(conn), config)


@app.task(name="rt.sweep_stalled")
def sweep_stalled() -> int:
    """Re-queue the work of lost messages (see classify.stalled); feeds whose fetch died need
    nothing here, as dispatch leases a feed again once its lease expires."""
    s = get_settings()
    # Messages waiting: a burst, whose items are most likely queued already, not lost.
    backlog = _queue_lengths()["queue classify"] > 0
    grace_s = s.sweep_backlog_grace_s if backlog else s.sweep_grace_s
    with _pool().connection() as conn:
        found = classify.stalled(conn, grace_s, SWEEP_LIMIT)
    for start in range(0, len(found.unclassified), ITEMS_PER_MESSAGE):
        classify_items.delay(found.unclassified[start : start + ITEMS_PER_MESSAGE])
    for start in range(0, len(found.unpaired), ITEMS_PER_MESSAGE):
        pair_items.delay(found.unpaired[start : start + ITEMS_PER_MESSAGE])
    return len(found.unclassified) + len(found.unpaired)


@app.task(name="rt.relay_outbox", bind=True)
def relay_outbox(self: Any) -> int:
    s = get_settings()
    try:
        with _retry_transient(self), _pool().connection() as conn:
            return alerts.relay(
                conn,
                alerts.mailer_for(s),
                s.mail_from,
                send_timeout_s=s.smtp_timeout_s,
                public_url=s.public_url,
                secret_key=s.secret_key.get_secret_value(),
                burst=s.alert_burst,
                retry_base_s=s.alert_retry_base_s,
            )
    except alerts.BatchInterrupted as interrupted:
        _settle_interrupted(interrupted)
        return len(interrupted.sent)


def _settle_interrupted(interrupted: alerts.BatchInterrupted) -> None:
    """Mark what the interrupted batch sent, and release what it did not, as soon as the
    database answers again: this process alone knows, and a resend would be a duplicate."""
    for attempt in range(SETTLE_ATTEMPTS):
        if attempt:
            time.sleep(backoff(attempt - 1, RETRY_BASE_S, RETRY_MAX_S))
        try:
            with _pool().connection() as conn:
                alerts.settle_interrupted(conn, interrupted)
            log.warning(
                "alert batch cut off by the database, recorded",
                sent=len(interrupted.sent),
                released=len(interrupted.unsent),
            )
            return
        except TRANSIENT:
            continue
    # Still down: the rows' leases expire and they are sent again (at least once).
    log.error("could not record an interrupted alert batch", sent=interrupted.sent)


@app.task(name="rt.heartbeat", bind=True)
def heartbeat(self: Any, queue: str) -> None:
    """Runs on the worker consuming `queue` (beat routes one to each queue)."""
    with _pool().connection() as conn:
        heartbeats.beat(conn, queue, str(self.request.hostname or "unknown"))


@app.task(name="rt.check_ops")
def check_ops() -> int:
    """Ops alerts: silent workers, queue backlogs, failing feeds."""
    backlog = _queue_lengths()
    with _pool().connection() as conn:
        return alert_ops.check(conn, backlog, alert_ops.limits(get_settings()))


def _queue_lengths() -> dict[str, int]:
    with app.connection_for_read() as connection:
        return {f"queue {q}": n for q, n in broker.queue_lengths(connection).items()}


@app.task(name="rt.retrain_models")
def retrain_models() -> list[str]:
    """Retrain from analysts' decisions when there are new ones; champion/challenger decides."""
    public_dir = get_settings().public_data_dir
    with _pool().connection() as conn:
        outcomes = training.retrain(conn, lambda _message: None, public_dir)
        return [o.version for o in outcomes if o.activated]


@app.task(name="rt.prune")
def prune() -> int:
    """Retention: one pass, at most retention.BUDGET_S long; the next run goes on from there."""
    policy = retention.Policy.from_settings(get_settings())
    with _pool().connection() as conn:
        done = retention.prune(conn, policy, datetime.now(UTC), budget_s=retention.BUDGET_S)
    return done.items_deleted
