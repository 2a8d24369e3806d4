"""`tracker bench faults`: feeds through the real pipeline, one fault at a time, then a count of
what came out: every item stored once, classified once per model version, each pair and each
alert once, nothing lost. The feeds are the demo's, or with `--feeds N --items-per-feed M` a load
of rumours and the clarifications that answer them (tracker/bench/faultload.py), so that each
fault strikes while thousands of items are in flight."""

import contextlib
import dataclasses
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import redis

from tracker.bench import faultload
from tracker.bench.faultenv import FEEDS_PER_SITE, FeedServer, Pipeline, services, wait_until
from tracker.demo import FEEDS_DIR
from tracker.pipeline import alert_mail, model_registry
from tracker.runtime.broker import QUEUES
from tracker.storage import db, feeds, outbox

FAULTS = (
    "none",
    "kill_worker_mid_fetch",
    "kill_worker_mid_classify",
    "kill_worker_mid_pair",
    "redis_restart",
    "postgres_restart",
    "smtp_outage",
    "second_beat",
    "connection_limit",
)
# How long a run may take to settle once its fault has ended: a guard against a hang, the
# settle time itself is reported. A loaded run gets longer (its burst takes minutes to drain).
SETTLE_S = 150
SETTLE_PER_ITEM_S = 0.5
# How often a run waiting to settle says what is still to do.
PROGRESS_EVERY_S = 10
# How long the connection-limit fault keeps every connection slot taken.
CONNECTIONS_HELD_S = 10
# After the counts settle, this long for a late redelivery to show up as a duplicate.
QUIET_S = 3
SUBSCRIBER = "analyst@example.org"


@dataclass(frozen=True)
class Result:
    fault: str
    seconds: float
    # From the fault's end (the worker started again, the server back, the slots free) until
    # every item is classified and paired and every alert sent.
    seconds_to_settle: float
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
    stories: int
    story_members: int
    # Copies of one text (the same title) that ended up in different stories: a story that
    # should have been one, counted as the extra stories. Reported, not part of `ok`: which
    # copy starts a story depends on the order items arrive in.
    story_splits: int
    alerts_queued: int
    alerts_received: int
    alert_duplicates: int
    alerts_lost: int
    # The most messages waiting in any queue, sampled twice a second.
    max_queue_depth: int
    # Task errors in the workers' logs by outcome and type: "retried DeadlockDetected" is a
    # task that met the error and sent itself again, "failed ..." one that gave up.
    task_errors: dict[str, int]
    # Items the sweeper re-queued: work of a lost message, or work it thought lost.
    swept: int
    # How long the classify and pair tasks that succeeded ran: median, 95th percentile and
    # longest, in seconds (what the sweeper's grace is measured against).
    task_seconds: dict[str, dict[str, float]]
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


class QueueDepth:
    """The longest any queue got, sampled twice a second in a thread while the block runs."""

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.most = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "QueueDepth":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join()

    def _sample(self) -> None:
        client = redis.Redis.from_url(self.broker_url, socket_timeout=1)
        try:
            while not self.done.wait(0.5):
                # Nothing to read while Redis is down for its fault.
                with contextlib.suppress(redis.RedisError):
                    lengths = [int(client.llen(queue)) for queue in QUEUES]
                    self.most = max(self.most, *lengths)
        finally:
            client.close()


class FaultBench:
    def __init__(
        self,
        directory: Path,
        load: faultload.Load | None = None,
        progress: Callable[[str], None] | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """`settings`: TRACKER_ settings (without the prefix) that differ from what ships; the
        bench measures the shipped ones, the integration test speeds up the ticks."""
        self.directory = directory
        self.load = load
        self.progress = progress
        self.settings = settings or {}
        n_feeds = load.feeds if load else len(demo_bodies("sites"))
        self.feeds = FeedServer(sites=-(-n_feeds // FEEDS_PER_SITE))
        # Processes a fault started that must run until the run settles (a second beat).
        self.stop_after_run: list[str] = []

    @contextlib.contextmanager
    def running(self) -> Iterator["FaultBench"]:
        with services(self.directory) as (pg, broker, smtp):
            self.pg, self.broker, self.smtp = pg, broker, smtp
            db.upgrade(pg.url)
            with psycopg.connect(pg.url, autocommit=True) as conn:
                model_registry.ensure_models(conn)
            self.pipeline = Pipeline(self.directory, pg.url, broker.url, smtp.port, self.settings)
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
        logs = self._log_sizes()
        bodies = faultload.bodies(fault, self.load) if self.load else demo_bodies(fault)
        paths = {f"/{fault}/{name}": body for name, (_, body) in bodies.items()}
        self.feeds.routes.update(paths)
        add = lambda: self._add_feeds(fault, bodies)  # noqa: E731
        with QueueDepth(self.broker.url) as depth:
            INJECT[fault](self, add, sorted(paths))
            fault_ended = time.monotonic()
            expected = sum(expected_items(body) for body in paths.values())
            self._settle(expected)
            settled = time.monotonic() - fault_ended
        time.sleep(QUIET_S)
        while self.stop_after_run:
            self.pipeline.stop(self.stop_after_run.pop())
        fetches = sum(self.feeds.requests[p] for p in paths)
        for path in paths:
            del self.feeds.routes[path]
        return self._count(
            fault,
            time.monotonic() - started,
            settled,
            len(paths),
            fetches,
            expected,
            depth.most,
            self._log_text(logs),
        )

    def _log_sizes(self) -> dict[Path, int]:
        return {path: path.stat().st_size for path in self.directory.glob("*.log")}

    def _log_text(self, since: dict[Path, int]) -> str:
        """What the processes logged since `since` was taken."""
        parts = []
        for path in sorted(self.directory.glob("*.log")):
            with path.open("rb") as log:
                log.seek(since.get(path, 0))
                parts.append(log.read().decode(errors="replace"))
        return "\n".join(parts)

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
            for n, (name, (entry, _)) in enumerate(bodies.items()):
                feeds.add(
                    conn,
                    feeds.NewFeed(
                        url=self.feeds.url(f"/{fault}/{name}", n // FEEDS_PER_SITE),
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
        """Wait until nothing is pending, saying what still is every PROGRESS_EVERY_S: a
        loaded run takes minutes."""
        limit_s = SETTLE_S + SETTLE_PER_ITEM_S * expected
        started = time.monotonic()
        said = started
        while pending := self._pending(expected):
            now = time.monotonic()
            if now - started > limit_s:
                raise TimeoutError(f"not settled after {limit_s:.0f} s, still to do: {pending}")
            if self.progress and now - said >= PROGRESS_EVERY_S:
                to_do = ", ".join(f"{name} {n}" for name, n in pending.items())
                self.progress(f"  {now - started:4.0f} s after the fault, still to do: {to_do}")
                said = now
            time.sleep(0.5)

    def _count(
        self,
        fault: str,
        seconds: float,
        settled: float,
        n_feeds: int,
        fetches: int,
        expected: int,
        max_queue_depth: int,
        log: str,
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
            seconds_to_settle=round(settled, 1),
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
            stories=q("SELECT count(DISTINCT story_id) FROM items"),
            story_members=q("SELECT count(*) FROM items WHERE story_id IS NOT NULL"),
            story_splits=q(
                """SELECT coalesce(sum(n - 1), 0)::int FROM (
                       SELECT count(DISTINCT story_id) AS n FROM items
                       WHERE story_id IS NOT NULL GROUP BY title) t"""
            ),
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
            max_queue_depth=max_queue_depth,
            task_errors=task_errors(log),
            swept=sum(int(n) for n in SWEPT.findall(log)),
            task_seconds=task_seconds(log),
            restarts=dict(self.pipeline.restarts),
        )


# What Celery's worker logs when a task sends itself again, or fails for good.
RETRIED = re.compile(r"Task rt\.\w+\[[^\]]+\] retry: Retry in \S+: (\w+)\(")
FAILED = re.compile(r"Task rt\.\w+\[[^\]]+\] raised unexpected: (\w+)\(")
SWEPT = re.compile(r"Task rt\.sweep_stalled\[[^\]]+\] succeeded in \S+: (\d+)")


SUCCEEDED = re.compile(r"Task rt\.(classify_items|pair_items)\[[^\]]+\] succeeded in ([\d.]+)s")


def task_seconds(log: str) -> dict[str, dict[str, float]]:
    found: dict[str, list[float]] = {}
    for name, seconds in SUCCEEDED.findall(log):
        found.setdefault(name, []).append(float(seconds))
    return {
        name: {
            "p50": round(float(np.percentile(times, 50)), 2),
            "p95": round(float(np.percentile(times, 95)), 2),
            "max": round(max(times), 2),
        }
        for name, times in sorted(found.items())
    }


def task_errors(log: str) -> dict[str, int]:
    found = Counter(f"retried {name}" for name in RETRIED.findall(log))
    found.update(f"failed {name}" for name in FAILED.findall(log))
    return dict(sorted(found.items()))


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
    _kill_classify_worker_blocked_on(bench, "classifications", add)


def _kill_mid_pair(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    # The same inside pair_items: the candidates searched and scored, the pairs' INSERT waiting.
    _kill_classify_worker_blocked_on(bench, "pairs", add)


def _kill_classify_worker_blocked_on(
    bench: FaultBench, table: str, add: Callable[[], None]
) -> None:
    with psycopg.connect(bench.pg.url) as lock:
        lock.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        add()
        wait_until(
            lambda: bench.query(
                f"""SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                    AND query ILIKE '%INSERT INTO {table}%'"""
            ),
            120,
            f"an INSERT INTO {table} blocked on the lock",
        )
        bench.pipeline.kill("worker-classify")
        lock.rollback()
    bench.pipeline.start("worker-classify")


def _started(bench: FaultBench) -> bool:
    return bool(bench.query("SELECT count(*) > 0 FROM items"))


def _pairing(bench: FaultBench) -> bool:
    return bool(bench.query("SELECT count(*) > 0 FROM pairs"))


def _restart_redis(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    add()
    # Items stored: classify (and, under load, fetch) messages are queued.
    wait_until(lambda: _started(bench), 60, "the first items")
    bench.broker.stop()
    time.sleep(2)
    bench.broker.start()


def _restart_postgres(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    add()
    wait_until(lambda: _pairing(bench), 120, "the first pairs")
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


def _connection_limit(bench: FaultBench, add: Callable[[], None], paths: list[str]) -> None:
    add()
    wait_until(lambda: _started(bench), 60, "the first items")
    # Every free slot taken (superuser ones too: the pipeline connects as the superuser here),
    # so any new connection a task or its pool opens is refused with "too many clients".
    held: list[psycopg.Connection] = []
    try:
        while True:
            try:
                held.append(psycopg.connect(bench.pg.url, autocommit=True))
            except psycopg.OperationalError:
                break
        time.sleep(CONNECTIONS_HELD_S)
    finally:
        for conn in held:
            conn.close()


INJECT: dict[str, Callable[[FaultBench, Callable[[], None], list[str]], None]] = {
    "none": _none,
    "kill_worker_mid_fetch": _kill_mid_fetch,
    "kill_worker_mid_classify": _kill_mid_classify,
    "kill_worker_mid_pair": _kill_mid_pair,
    "redis_restart": _restart_redis,
    "postgres_restart": _restart_postgres,
    "smtp_outage": _smtp_outage,
    "second_beat": _second_beat,
    "connection_limit": _connection_limit,
}


def bench(
    directory: Path,
    faults: tuple[str, ...] = FAULTS,
    load: faultload.Load | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    results = []
    with FaultBench(directory, load, progress).running() as fb:
        for fault in faults:
            if progress:
                progress(f"{fault} ...")
            results.append(fb.run(fault))
            if progress:
                r = results[-1]
                progress(
                    f"{fault}: {'ok' if r.ok else 'NOT OK'}, {r.items_found} items, "
                    f"settled {r.seconds_to_settle} s after the fault"
                )
    return {
        "feeds": load.feeds if load else None,
        "items_per_feed": load.items_per_feed if load else None,
        "faults_injected": sum(r.fault != "none" for r in results),
        "all_ok": all(r.ok for r in results),
        "runs": [dataclasses.asdict(r) | {"ok": r.ok} for r in results],
    }
