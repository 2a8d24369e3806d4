"""`tracker bench faults`: the demo feeds through the real pipeline, one fault at a time, then a
count of what came out: every item stored once, classified once per model version, each pair
and each alert once, nothing lost."""

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tracker import alert_mail, model_registry
from tracker.bench.faultenv import FeedServer, Pipeline, services, wait_until
from tracker.demo import FEEDS_DIR
from tracker.storage import db, feeds, outbox

FAULTS = (
    "none",
    "kill_worker_mid_fetch",
    "kill_worker_mid_classify",
    "redis_restart",
    "postgres_restart",
    "smtp_outage",
    "second_beat",
)
SETTLE_S = 150
# After the counts settle, this long for a late redelivery to show up as a duplicate.
QUIET_S = 3
SUBSCRIBER = "analyst@example.org"


@dataclass(frozen=True)
class Result:
    fault: str
    seconds: float
    feeds: int
    fetches: int
    items_expected: int
    items_found: int
    item_duplicates: int
    classified: int
    classification_duplicates: int
    unclassified: int
    pairs: int
    pair_duplicates: int
    unpaired: int
    alerts_queued: int
    alerts_received: int
    alert_duplicates: int
    alerts_lost: int
    # Processes that exited by themselves during the run and were restarted (see Pipeline).
    restarts: dict[str, int]

    @property
    def ok(self) -> bool:
        duplicates = self.item_duplicates + self.classification_duplicates
        lost = self.unclassified + self.unpaired + self.alerts_lost
        return (
            duplicates + self.pair_duplicates + self.alert_duplicates + lost == 0
            and self.items_found == self.items_expected
        )


def demo_bodies(tag: str) -> dict[str, tuple[dict[str, str], bytes]]:
    """The demo feeds with ids and links of their own per run (no copies of an earlier run)."""
    found = {}
    for entry in json.loads((FEEDS_DIR / "manifest.json").read_text(encoding="utf-8")):
        text = (FEEDS_DIR / entry["file"]).read_text(encoding="utf-8")
        text = re.sub(r"(<guid[^>]*>|<id>)([^<]+)", rf"\g<1>\g<2>-{tag}", text)
        text = text.replace("http://demo.invalid/", f"http://demo.invalid/{tag}/")
        found[entry["file"]] = (entry, text.encode())
    return found


def expected_items(body: bytes) -> int:
    return body.count(b"<item>") + body.count(b"<entry>")


class FaultBench:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.feeds = FeedServer()
        # Processes a fault started that must run until the run settles (a second beat).
        self.stop_after_run: list[str] = []

    @contextlib.contextmanager
    def running(self) -> Iterator["FaultBench"]:
        with services(self.directory) as (pg, broker, smtp):
            self.pg, self.broker, self.smtp = pg, broker, smtp
            db.upgrade(pg.url)
            with psycopg.connect(pg.url, autocommit=True) as conn:
                model_registry.ensure_models(conn)
            self.pipeline = Pipeline(self.directory, pg.url, broker.url, smtp.port)
            for role in ("worker-fetch", "worker-classify", "beat"):
                self.pipeline.start(role)
            self.pipeline.watch()
            try:
                yield self
            finally:
                self.pipeline.stop_all()
                self.feeds.close()

    def query(self, sql: str) -> Any:
        # A connection per question: the PostgreSQL restart breaks long-lived ones.
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
            assert row is not None
            return row[0]

    def run(self, fault: str) -> Result:
        started = time.monotonic()
        self._reset()
        self.pipeline.restarts.clear()
        bodies = demo_bodies(fault)
        paths = {f"/{fault}/{name}": body for name, (_, body) in bodies.items()}
        self.feeds.routes.update(paths)
        add = lambda: self._add_feeds(fault, bodies)  # noqa: E731
        INJECT[fault](self, add, sorted(paths))
        expected = sum(expected_items(body) for body in paths.values())
        self._settle(expected)
        time.sleep(QUIET_S)
        while self.stop_after_run:
            self.pipeline.stop(self.stop_after_run.pop())
        fetches = sum(self.feeds.requests[p] for p in paths)
        return self._count(fault, time.monotonic() - started, len(paths), fetches, expected)

    def _reset(self) -> None:
        for attempt in range(5):
            try:
                return self._truncate()
            except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
                # TRUNCATE locks many tables; a running task may hold one of them.
                time.sleep(0.5 * (attempt + 1))
        self._truncate()

    def _truncate(self) -> None:
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '5s'")
            db.empty_tables(conn)
            outbox.subscribe(conn, SUBSCRIBER, [], 0.5)
        self.smtp.message_ids.clear()

    def _add_feeds(self, fault: str, bodies: dict[str, tuple[dict[str, str], bytes]]) -> None:
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            for name, (entry, _) in bodies.items():
                feeds.add(
                    conn,
                    feeds.NewFeed(
                        url=self.feeds.url(f"/{fault}/{name}"),
                        kind=entry["kind"],
                        title=entry["title"],
                        language=entry["language"],
                    ),
                )

    def _pending(self, expected: int) -> dict[str, int]:
        """What the run still has to do; empty when it has settled."""
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            row = conn.execute(
                f"""SELECT {expected} - (SELECT count(*) FROM items),
                      (SELECT count(*) FROM feeds WHERE lease_token IS NOT NULL
                                                    OR last_polled_at IS NULL),
                      (SELECT count(*) FROM ({UNCLASSIFIED}) u),
                      (SELECT count(*) FROM classifications WHERE paired_at IS NULL),
                      (SELECT count(*) FROM alert_outbox WHERE status = 'pending'),
                      (SELECT count(*) FROM alert_outbox WHERE status = 'sending')"""
            ).fetchone()
        assert row is not None
        names = ("items", "feeds", "unclassified", "unpaired", "alerts pending", "alerts sending")
        return {name: n for name, n in zip(names, row, strict=True) if n}

    def _settle(self, expected: int) -> None:
        deadline = time.monotonic() + SETTLE_S
        while pending := self._pending(expected):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not settled after {SETTLE_S} s, still to do: {pending}")
            time.sleep(0.5)

    def _count(
        self, fault: str, seconds: float, n_feeds: int, fetches: int, expected: int
    ) -> Result:
        q = self.query
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            sent = [
                r[0]
                for r in conn.execute(
                    "SELECT dedupe_key FROM alert_outbox WHERE status = 'sent'"
                ).fetchall()
            ]
        received = self.smtp.message_ids
        return Result(
            fault=fault,
            seconds=round(seconds, 1),
            feeds=n_feeds,
            fetches=fetches,
            items_expected=expected,
            items_found=q("SELECT count(*) FROM items"),
            item_duplicates=q(
                "SELECT count(*) - count(DISTINCT (feed_id, coalesce(guid, dedupe_key))) FROM items"
            ),
            classified=q(f"SELECT count(*) FROM classifications WHERE model_version = ({ACTIVE})"),
            classification_duplicates=q(
                "SELECT count(*) - count(DISTINCT (item_id, model_version)) FROM classifications"
            ),
            unclassified=q(f"SELECT count(*) FROM ({UNCLASSIFIED}) u"),
            pairs=q("SELECT count(*) FROM pairs"),
            pair_duplicates=q(
                "SELECT count(*) - count(DISTINCT (rumour_id, clarification_id)) FROM pairs"
            ),
            unpaired=q("SELECT count(*) FROM classifications WHERE paired_at IS NULL"),
            alerts_queued=q(
                """SELECT count(*) FROM alert_outbox
                   WHERE status IN ('pending', 'sending', 'sent', 'dead')"""
            ),
            alerts_received=len(received),
            alert_duplicates=sum(received.values()) - len(received),
            alerts_lost=q(
                "SELECT count(*) FROM alert_outbox WHERE status IN ('pending', 'sending', 'dead')"
            )
            + sum(1 for key in sent if alert_mail.message_id(key) not in received),
            restarts=dict(self.pipeline.restarts),
        )


ACTIVE = "SELECT version FROM models WHERE kind = 'item' AND active"
UNCLASSIFIED = f"""SELECT 1 FROM items i WHERE NOT EXISTS (
    SELECT 1 FROM classifications c WHERE c.item_id = i.id AND c.model_version = ({ACTIVE}))"""


def _none(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    add()


def _kill_mid_fetch(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    bench.feeds.stalled.clear()
    bench.feeds.release.clear()
    bench.feeds.stall.add(paths[0])
    add()
    # The feed server holds the request: the worker is inside fetch_feed when it dies.
    if not bench.feeds.stalled.wait(60):
        raise TimeoutError("the stalled feed was never fetched")
    bench.pipeline.kill("worker-fetch")
    bench.feeds.release.set()
    bench.pipeline.start("worker-fetch")


def _kill_mid_classify(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    # Our lock holds the classifier's INSERT: the worker dies inside classify_items, with the
    # predictions made and the transaction open.
    with psycopg.connect(bench.pg.url) as lock:
        lock.execute("LOCK TABLE classifications IN EXCLUSIVE MODE")
        add()
        wait_until(
            lambda: bench.query(
                """SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                   AND query ILIKE '%INSERT INTO classifications%'"""
            ),
            60,
            "a classification blocked on the lock",
        )
        bench.pipeline.kill("worker-classify")
        lock.rollback()
    bench.pipeline.start("worker-classify")


def _started(bench: FaultBench) -> bool:
    return bool(bench.query("SELECT count(*) > 0 FROM items"))


def _restart_redis(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    add()
    wait_until(lambda: _started(bench), 60, "the first items")
    bench.broker.stop()
    time.sleep(2)
    bench.broker.start()


def _restart_postgres(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    add()
    wait_until(lambda: _started(bench), 60, "the first items")
    bench.pg.restart()


def _smtp_outage(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    bench.smtp.stop()
    add()
    wait_until(
        lambda: bench.query("SELECT count(*) > 0 FROM alert_outbox WHERE last_error IS NOT NULL"),
        90,
        "an alert to fail while SMTP is down",
    )
    time.sleep(1)
    bench.smtp.start()


def _second_beat(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    bench.pipeline.start("beat", name="beat-2")
    time.sleep(2)
    add()
    wait_until(lambda: _started(bench), 60, "the first items")
    # Both beats keep ticking until the run settles; the second stops when it has.
    bench.stop_after_run.append("beat-2")


INJECT: dict[str, Callable[[FaultBench, Callable[[], None], list[str]], None]] = {
    "none": _none,
    "kill_worker_mid_fetch": _kill_mid_fetch,
    "kill_worker_mid_classify": _kill_mid_classify,
    "redis_restart": _restart_redis,
    "postgres_restart": _restart_postgres,
    "smtp_outage": _smtp_outage,
    "second_beat": _second_beat,
}


def bench(directory: Path, faults: tuple[str, ...] = FAULTS) -> dict[str, Any]:
    with FaultBench(directory).running() as fb:
        results = [fb.run(fault) for fault in faults]
    return {
        "faults_injected": sum(r.fault != "none" for r in results),
        "all_ok": all(r.ok for r in results),
        "runs": [dataclasses.asdict(r) | {"ok": r.ok} for r in results],
    }
