"""`tracker bench scale`: the whole pipeline as deployed (one beat, fetch workers on the threads
pool and classify workers on prefork, each on its own queue) against feeds served on loopback,
with 1, 2 and 4 worker processes per queue: end-to-end throughput and the scaling ratio."""

import contextlib
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from celery import Celery

from tracker.bench.corpus import (
    SMALL_ITEMS,
    CorpusServer,
    machine_busy_s,
    register,
    scratch_database,
)
from tracker.runtime import supervisor

FETCH_THREADS = 4
# Beat's dispatch tick leases up to 200 feeds (feeds.DISPATCH_BATCH): at 0.5 s the
# dispatcher offers 400 feeds/s, above what these workers fetch.
DISPATCH_EVERY_S = 0.5
# Registered feeds are not due again within a run: every fetch is a first poll.
POLL_INTERVAL_S = 7 * 24 * 3600
READY_TIMEOUT_S = 180
POLL_S = 0.2
QUEUES = ("fetch", "classify")
STAGES = {"stored": "rt.fetch_feed", "classified": "rt.classify_items", "paired": "rt.pair_items"}


@dataclass
class TaskEvents:
    """Celery task events (workers run with -E), counted per task name as Flower counts them:
    a `pair_items` success is the end of one feed's trip through the pipeline."""

    app: Celery
    names: dict[str, str] = field(default_factory=dict)
    succeeded: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    last_success: dict[str, float] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)
    stopping: threading.Event = field(default_factory=threading.Event)

    def capture(self) -> None:
        with self.app.connection_for_read() as conn:
            receiver = self.app.events.Receiver(conn, handlers={"*": self._on_event})
            # The receiver checks should_stop between waits of at most a second.
            watcher = threading.Thread(target=self._stop_when_asked, args=(receiver,))
            watcher.start()
            receiver.capture(limit=None, timeout=None, wakeup=False)
            watcher.join()

    def _stop_when_asked(self, receiver: Any) -> None:
        self.stopping.wait()
        receiver.should_stop = True

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind.startswith("worker-"):
            self.nodes.add(str(event.get("hostname")))
        elif kind == "task-received":
            self.names[event["uuid"]] = event["name"]
        elif kind == "task-succeeded":
            name = self.names.get(event["uuid"], "unknown")
            self.succeeded[name] += 1
            self.last_success[name] = time.monotonic()
        elif kind == "task-failed":
            self.failed[self.names.get(event["uuid"], "unknown")] += 1


@contextlib.contextmanager
def watching(broker_url: str) -> Iterator[TaskEvents]:
    app = Celery("rt-bench-scale", broker=broker_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    events = TaskEvents(app)
    thread = threading.Thread(target=events.capture, daemon=True)
    thread.start()
    try:
        yield events
    finally:
        events.stopping.set()
        thread.join(timeout=10)


def purge_queues(broker_url: str) -> None:
    """Messages left by an interrupted run would be counted as this run's work."""
    app = Celery("rt-bench-scale", broker=broker_url, set_as_current=False)
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            with contextlib.suppress(Exception):  # a queue nobody declared yet is empty
                conn.default_channel.queue_purge(queue)


def worker_roles(n: int, tag: str, schedule: Path) -> list[supervisor.Role]:
    quiet = ("--loglevel", "WARNING")
    roles = [
        supervisor.Role(
            f"worker-fetch-{i}",
            supervisor.worker_argv("fetch", FETCH_THREADS, f"fetch{i}-{tag}@bench", "-E", *quiet),
        )
        for i in range(n)
    ]
    roles += [
        supervisor.Role(
            f"worker-classify-{i}",
            supervisor.worker_argv("classify", 1, f"classify{i}-{tag}@bench", "-E", *quiet),
        )
        for i in range(n)
    ]
    return [*roles, supervisor.Role("beat", supervisor.beat_argv(schedule, *quiet))]


def bench_env(db_url: str, broker_url: str, data_dir: Path, n_feeds: int) -> dict[str, str]:
    env = supervisor.child_env(
        db_url, broker_url, data_dir, "http://bench.invalid", ["127.0.0.1/32"], None
    )
    # Every generated feed is on one loopback host; a real fleet has thousands of hosts, so
    # the per-host politeness cap is lifted rather than measured here.
    env["TRACKER_FETCH_PER_HOST"] = str(n_feeds)
    env["TRACKER_DISPATCH_EVERY_S"] = str(DISPATCH_EVERY_S)
    return env


def reset(conn: psycopg.Connection, urls: list[str]) -> None:
    """Every run starts from the same state: the models kept, no feeds or items, the feeds
    registered but disabled until the clock starts."""
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT IN ('alembic_version', 'models')"
        ).fetchall()
    ]
    conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    register(conn, urls, poll_interval_s=POLL_INTERVAL_S)
    conn.execute("UPDATE feeds SET enabled = false")


def counts(conn: psycopg.Connection) -> dict[str, int]:
    found: dict[str, int] = {}
    for table in ("items", "classifications", "pairs", "stories"):
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        found[table] = int(row[0]) if row else 0
    return found


def peak_rss_mb(root_pids: Sequence[int]) -> dict[str, float]:
    """Peak resident memory (VmHWM) of the worker processes and their prefork children."""
    status: dict[int, dict[str, str]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                lines = (proc / "status").read_text().splitlines()
                status[int(proc.name)] = dict(
                    line.split(":\t", 1) for line in lines if ":\t" in line
                )
    tree, frontier = set(root_pids), list(root_pids)
    while frontier:
        parent = frontier.pop()
        for pid, fields in status.items():
            if fields.get("PPid", "").strip() == str(parent) and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    peaks = [int(status[p].get("VmHWM", "0 kB").split()[0]) / 1024 for p in tree if p in status]
    return {
        "max_process": round(max(peaks, default=0), 1),
        "all_processes": round(sum(peaks), 1),
        "processes": len(peaks),
    }


@dataclass(frozen=True)
class Clock:
    started: float
    machine_busy: float | None
    load: tuple[float, float, float]


def start_clock() -> Clock:
    return Clock(time.monotonic(), machine_busy_s(), os.getloadavg())


def run(
    db_url: str, broker_url: str, server: CorpusServer, n_feeds: int, workers: int
) -> dict[str, Any]:
    """Start the workers and beat, wait until every worker node is heard from, then enable
    the feeds and time until the last feed's items are paired."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        reset(conn, [server.url("small", n) for n in range(n_feeds)])
    purge_queues(broker_url)
    tag = uuid.uuid4().hex[:6]
    with (
        tempfile.TemporaryDirectory(prefix="rt-bench-scale-") as tmp,
        open(Path(tmp) / "workers.log", "wb") as log,
        watching(broker_url) as events,
    ):
        roles = worker_roles(workers, tag, Path(tmp) / "celerybeat-schedule")
        sup = supervisor.Supervisor(roles, bench_env(db_url, broker_url, Path(tmp), n_feeds), log)
        sup.start()
        try:
            nodes = {f"{q}{i}-{tag}@bench" for q in QUEUES for i in range(workers)}
            _wait(sup, Path(tmp), lambda: nodes <= events.nodes, READY_TIMEOUT_S, "workers")
            clock = start_clock()
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("UPDATE feeds SET enabled = true, next_poll_at = now()")
            _wait(sup, Path(tmp), lambda: _finished(events, n_feeds), None, "the pipeline")
            machine_end, load_end = machine_busy_s(), os.getloadavg()
            memory = peak_rss_mb([p.pid for name, p in sup.procs.items() if name != "beat"])
        finally:
            sup.stop()
    with psycopg.connect(db_url, autocommit=True) as conn:
        stored = counts(conn)
    return _figures(n_feeds, workers, clock, events, stored, memory, machine_end, load_end)


def _finished(events: TaskEvents, n_feeds: int) -> bool:
    if events.failed:
        raise RuntimeError(f"tasks failed during the run: {dict(events.failed)}")
    # One pair_items message per feed: the bench's feeds hold fewer items than one message
    # takes (workers/tasks.py ITEMS_PER_MESSAGE).
    return events.succeeded[STAGES["paired"]] >= n_feeds


def _wait(
    sup: supervisor.Supervisor,
    tmp: Path,
    done: Callable[[], bool],
    timeout_s: float | None,
    what: str,
) -> None:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not done():
        dead = [name for name, p in sup.procs.items() if p.poll() is not None]
        if dead or (deadline is not None and time.monotonic() > deadline):
            tail = (tmp / "workers.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"waiting for {what}: exited {dead or 'none'}; log tail:\n{tail}")
        time.sleep(POLL_S)


def _figures(
    n_feeds: int,
    workers: int,
    clock: Clock,
    events: TaskEvents,
    stored: dict[str, int],
    memory: dict[str, float],
    machine_end: float | None,
    load_end: tuple[float, float, float],
) -> dict[str, Any]:
    items = n_feeds * SMALL_ITEMS
    seconds = events.last_success[STAGES["paired"]] - clock.started
    stage_s = {
        k: events.last_success.get(name, clock.started) - clock.started
        for k, name in STAGES.items()
    }
    cores = os.cpu_count() or 1
    busy = (
        None
        if clock.machine_busy is None or machine_end is None
        else machine_end - clock.machine_busy
    )
    return {
        "workers_per_queue": workers,
        "seconds": round(seconds, 2),
        "items_per_s": round(items / seconds, 1),
        "feeds_per_s": round(n_feeds / seconds, 1),
        # When each stage finished its last task: a stage's rate over the run up to then.
        "stage_items_per_s": {
            k: round(items / s, 1) if s > 0 else None for k, s in stage_s.items()
        },
        "tasks_succeeded": {k: events.succeeded[name] for k, name in STAGES.items()},
        "stored": stored,
        "all_processed": (
            stored["items"] == items
            and stored["classifications"] == items
            and events.succeeded[STAGES["paired"]] == n_feeds
        ),
        "peak_rss_mb": memory,
        "machine_cpu_busy_fraction": None if busy is None else round(busy / (seconds * cores), 3),
        "load_average_1m": {"start": round(clock.load[0], 2), "end": round(load_end[0], 2)},
    }


def bench(
    server_url: str,
    broker_url: str,
    n_feeds: int,
    worker_counts: Sequence[int],
    echo: Callable[[str], None],
) -> dict[str, Any]:
    # Imported here: scikit-learn takes a second to load.
    from tracker.pipeline.model_registry import ensure_models

    server = CorpusServer()
    server.warm("small", range(n_feeds))
    runs = []
    try:
        with scratch_database(server_url) as db_url:
            with psycopg.connect(db_url, autocommit=True) as conn:
                ensure_models(conn)
            for workers in worker_counts:
                echo(f"{workers} worker process(es) per queue ...")
                runs.append(run(db_url, broker_url, server, n_feeds, workers))
                echo(f"  {runs[-1]['items_per_s']} items/s")
    finally:
        server.close()
    base = runs[0]["items_per_s"]
    for figures in runs:
        figures["scaling_vs_first"] = round(figures["items_per_s"] / base, 3)
    cores = os.cpu_count() or 1
    return {
        "feeds": n_feeds,
        "items_per_feed": SMALL_ITEMS,
        "items": n_feeds * SMALL_ITEMS,
        "machine_cores": cores,
        "cores_note": (
            f"this machine has {cores} cores shared by workers, beat, PostgreSQL, Redis and the "
            f"corpus server: more than {cores} CPU-bound worker processes cannot run at once, "
            "so scaling past that measures contention, not capacity"
        ),
        "topology": {
            "fetch": f"queue fetch, threads pool, {FETCH_THREADS} threads per process",
            "classify": "queue classify (classify_items, pair_items), prefork, 1 child each",
            "beat": f"one, dispatch every {DISPATCH_EVERY_S} s",
            "fetch_per_host": f"{n_feeds} (one loopback host; politeness lifted)",
        },
        "runs": runs,
    }
