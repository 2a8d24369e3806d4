"""Retention: delete items older than TRACKER_RETAIN_ITEMS_DAYS, in batches, keeping what
analysts and the fact-check archive need (storage/retention.py says what is kept), and review
decisions and the audit log older than TRACKER_RETAIN_DECISIONS_DAYS when that is set.

The beat task runs a pass every TRACKER_PRUNE_EVERY_H hours for at most BUDGET_S seconds (a
year's backlog goes over several runs, none holding a worker long); `tracker prune` runs one to
the end. Each batch is its own short transaction, so the review queue is not kept waiting.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import structlog

from tracker import metrics
from tracker.config import Settings
from tracker.storage import retention

log = structlog.get_logger(__name__)

# A beat run stops after this long and the next run goes on where it left off.
BUDGET_S = 120.0
# A progress line at most this often.
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class Policy:
    items_days: int  # 0: items are kept forever
    decisions_days: int  # 0: review decisions and the audit log are kept forever
    batch: int
    pause_s: float  # between batches: other transactions get the locks and the disk

    @classmethod
    def from_settings(cls, s: Settings) -> "Policy":
        return cls(
            items_days=s.retain_items_days,
            decisions_days=s.retain_decisions_days,
            batch=s.prune_batch,
            pause_s=s.prune_pause_s,
        )

    def items_cutoff(self, now: datetime) -> datetime | None:
        return now - timedelta(days=self.items_days) if self.items_days else None

    def decisions_cutoff(self, now: datetime) -> datetime | None:
        return now - timedelta(days=self.decisions_days) if self.decisions_days else None


@dataclass(frozen=True)
class Pass:
    scanned: int
    items_deleted: int
    reviews_deleted: int
    audit_deleted: int
    seconds: float
    # False when the time budget ran out first.
    finished: bool


Progress = Callable[[int, int], None]


def _log_progress(scanned: int, deleted: int) -> None:
    log.info("pruning items", scanned=scanned, deleted=deleted)


def prune(
    conn: psycopg.Connection,
    policy: Policy,
    now: datetime,
    budget_s: float | None = None,
    progress: Progress = _log_progress,
) -> Pass:
    """One retention pass (conn in autocommit: each batch commits by itself)."""
    started = time.monotonic()
    reviews = audit = 0
    decisions_cutoff = policy.decisions_cutoff(now)
    if decisions_cutoff is not None:
        with conn.transaction():
            reviews, audit = retention.delete_decisions(conn, decisions_cutoff)
        metrics.pruned("reviews", reviews)
        metrics.pruned("audit", audit)
    scanned = deleted = 0
    finished = True
    items_cutoff = policy.items_cutoff(now)
    if items_cutoff is not None:
        after = retention.START
        reported = started
        while True:
            batch = retention.delete_batch(conn, items_cutoff, after, policy.batch)
            scanned += batch.scanned
            deleted += batch.deleted
            metrics.pruned("items", batch.deleted)
            after = batch.last
            if batch.scanned < policy.batch:
                break
            if budget_s is not None and time.monotonic() - started > budget_s:
                finished = False
                break
            if time.monotonic() - reported >= PROGRESS_EVERY_S:
                progress(scanned, deleted)
                reported = time.monotonic()
            time.sleep(policy.pause_s)
    result = Pass(
        scanned=scanned,
        items_deleted=deleted,
        reviews_deleted=reviews,
        audit_deleted=audit,
        seconds=time.monotonic() - started,
        finished=finished,
    )
    log.info(
        "pruned" if finished else "pruning paused until the next run",
        expired_items_scanned=scanned,
        items_deleted=deleted,
        reviews_deleted=reviews,
        audit_rows_deleted=audit,
        seconds=round(result.seconds, 1),
    )
    return result
