"""`tracker bench ingest`: feeds generated and served on loopback, ingested by the real refresh
path (fetch, parse, store, schedule) in 1 and 2 worker processes, against bare feedparser."""

import hashlib
import logging
import multiprocessing
import os
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import feedparser
import psycopg
import structlog

from tracker.bench.corpus import (
    CLOCK_TICKS,
    ITEMS_PER_FEED,
    SMALL_ITEMS,
    CorpusServer,
    feed_bytes,
    machine_busy_s,
    register,
    scratch_database,
)
from tracker.ingest.fetch import FetchPolicy
from tracker.pipeline.refresh import RefreshConfig, refresh_feed
from tracker.storage import feeds

THREADS_PER_WORKER = 4
WARMUP_FEEDS = 40


@dataclass(frozen=True)
class Cpu:
    """CPU seconds spent during a run, by whom: the worker processes, their PostgreSQL
    sessions and the dispatcher's, this process (the corpus server and the dispatcher), and
    the whole machine (all cores), whose remainder is everything else: PostgreSQL's background
    processes and other users."""

    workers: float
    db_sessions: float | None
    server_and_dispatch: float
    machine: float | None

    def as_dict(self, seconds: float) -> dict[str, float | None]:
        ours = self.workers + (self.db_sessions or 0) + self.server_and_dispatch
        return {
            "workers": round(self.workers, 2),
            "db_sessions": _rounded(self.db_sessions),
            "server_and_dispatch": round(self.server_and_dispatch, 2),
            "everything_else": _rounded(None if self.machine is None else self.machine - ours),
            "machine_busy": _rounded(self.machine),
            "machine_capacity": round(seconds * (os.cpu_count() or 1), 2),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass(frozen=True)
class Run:
    seconds: float
    statuses: dict[str, int]
    peak_rss_mb: float
    cpu: Cpu


def _rusage_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _session_cpu_s(conn: psycopg.Connection) -> float | None:
    """CPU seconds of this connection's PostgreSQL backend, when the server runs here."""
    if conn.info.host not in ("127.0.0.1", "::1", "localhost") and not conn.info.host.startswith(
        "/"
    ):
        return None
    proc = Path(f"/proc/{conn.info.backend_pid}")
    try:
        if proc.joinpath("comm").read_text().strip() != "postgres":
            return None
        fields = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _worker_thread(
    db_url: str,
    config: RefreshConfig,
    tasks: Any,
    statuses: Counter[str],
    sessions: list[float | None],
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        while (lease := tasks.get()) is not None:
            statuses[refresh_feed(conn, lease, config).status] += 1
        sessions.append(_session_cpu_s(conn))


def _worker_process(db_url: str, tasks: Any, out: Any, start: Any, threads: int) -> None:
    # One log line per feed is what production writes; thousands to a terminal measure the
    # terminal, not the tracker.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    config = RefreshConfig(
        policy=FetchPolicy(
            timeout_s=30,
            max_bytes=10 * 1024 * 1024,
            user_agent="bench",
            allow_networks=(ip_network("127.0.0.0/8"),),
        ),
        max_backoff_s=3600,
        disable_after=timedelta(days=3),
    )
    counts: list[Counter[str]] = [Counter() for _ in range(threads)]
    sessions: list[float | None] = []
    workers = [
        threading.Thread(target=_worker_thread, args=(db_url, config, tasks, counted, sessions))
        for counted in counts
    ]
    start.wait()  # every process imported and ready: the clock starts for all at once
    cpu = _rusage_cpu_s()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    finished = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on Linux
    db_cpu = None if None in sessions else sum(s or 0 for s in sessions)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((dict(sum(counts, Counter())), rss, finished, _rusage_cpu_s() - cpu, db_cpu))


def _dispatch(db_url: str, tasks: Any, consumers: int) -> float | None:
    """Claim every due feed as the beat task does and queue one lease per feed, as the broker
    hands each worker one task at a time (prefetch multiplier 1), then one stop per consumer;
    returns the dispatcher's PostgreSQL CPU seconds."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            with conn.transaction():
                leases = feeds.claim_due(conn, feeds.DISPATCH_BATCH, 600, per_host=10_000)
            if not leases:
                break
            for lease in leases:
                tasks.put(lease)
        for _ in range(consumers):
            tasks.put(None)
        return _session_cpu_s(conn)


def run_workers(db_url: str, processes: int, threads: int = THREADS_PER_WORKER) -> Run:
    """Time from the moment every worker is ready until the last one has refreshed its last
    feed; interpreter start-up and imports are not ingestion and stay off the clock."""
    context = multiprocessing.get_context("spawn")
    tasks, out = context.Queue(), context.Queue()
    start = context.Barrier(processes + 1)
    procs = [
        context.Process(target=_worker_process, args=(db_url, tasks, out, start, threads))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    start.wait()
    started, own_cpu, machine = time.monotonic(), _rusage_cpu_s(), machine_busy_s()
    dispatcher_db = _dispatch(db_url, tasks, processes * threads)
    results = [out.get() for _ in procs]
    # This process dispatched, then only waited on the queue: the rest of its CPU is the
    # corpus server's.
    own_cpu, machine_end = _rusage_cpu_s() - own_cpu, machine_busy_s()
    for p in procs:
        p.join()
    seconds = max(r[2] for r in results) - started
    total: Counter[str] = Counter()
    for r in results:
        total.update(r[0])
    sessions = [r[4] for r in results] + [dispatcher_db]
    cpu = Cpu(
        workers=sum(r[3] for r in results),
        db_sessions=None if None in sessions else sum(s or 0 for s in sessions),
        server_and_dispatch=own_cpu,
        machine=None if machine is None or machine_end is None else machine_end - machine,
    )
    return Run(seconds, dict(total), max(r[1] for r in results), cpu)


def bare_parse_rate(n_feeds: int) -> float:
    """Items per second of feedparser.parse alone on the same bytes, in this process."""
    bodies = [feed_bytes(n) for n in range(n_feeds)]
    started = time.perf_counter()
    entries = sum(len(feedparser.parse(body).entries) for body in bodies)
    return entries / (time.perf_counter() - started)


def _fresh_ingest(
    server: CorpusServer, db_url: str, n_feeds: int, processes: int, offset: int
) -> Run:
    server.warm("feed", range(offset, offset + n_feeds))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE feeds SET enabled = false")
        register(conn, [server.url("feed", offset + n) for n in range(n_feeds)])
    return run_workers(db_url, processes)


def _repoll(server: CorpusServer, db_url: str, n_feeds: int, processes: int) -> Run:
    """Feeds already polled once (validators and body hash stored, as after a first poll)."""
    server.warm("small", range(n_feeds))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE feeds SET enabled = false")
        urls = [server.url("small", n) for n in range(n_feeds)]
        register(conn, urls)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "UPDATE feeds SET etag = %s, body_hash = %s WHERE url = %s",
                [
                    (
                        server.etag_of("small", n),
                        hashlib.sha256(feed_bytes(n, SMALL_ITEMS)).hexdigest(),
                        url,
                    )
                    for n, url in enumerate(urls)
                ],
            )
    return run_workers(db_url, processes)


def bench(server_url: str, n_feeds: int, repoll_feeds: int) -> dict[str, Any]:
    baseline = bare_parse_rate(n_feeds)
    server = CorpusServer()
    try:
        with scratch_database(server_url) as db_url:
            # Untimed: a running tracker has items and planner statistics; an empty database
            # would be measured with plans made for empty tables.
            _fresh_ingest(server, db_url, WARMUP_FEEDS, 1, offset=100 * n_feeds)
            one = _fresh_ingest(server, db_url, n_feeds, 1, offset=0)
            two = _fresh_ingest(server, db_url, n_feeds, 2, offset=n_feeds)
            repoll = _repoll(server, db_url, repoll_feeds, 2)
    finally:
        server.close()
    items = n_feeds * ITEMS_PER_FEED
    rate_one, rate_two = items / one.seconds, items / two.seconds
    spared = repoll.statuses.get("not_modified", 0) + repoll.statuses.get("unchanged", 0)
    return {
        "feeds": n_feeds,
        "items_per_feed": ITEMS_PER_FEED,
        "bare_feedparser_items_per_s": round(baseline),
        "one_worker": {
            "items_per_s": round(rate_one),
            "seconds": round(one.seconds, 2),
            "statuses": one.statuses,
            "cpu_s": one.cpu.as_dict(one.seconds),
        },
        "two_workers": {
            "items_per_s": round(rate_two),
            "seconds": round(two.seconds, 2),
            "statuses": two.statuses,
            "cpu_s": two.cpu.as_dict(two.seconds),
        },
        "ratio_one_worker_to_bare_parse": round(rate_one / baseline, 3),
        "scaling_two_to_one_workers": round(rate_two / rate_one, 3),
        "repoll": {
            "feeds": repoll_feeds,
            "seconds": round(repoll.seconds, 2),
            "feeds_per_s": round(repoll_feeds / repoll.seconds),
            "spared_parse_fraction": round(spared / repoll_feeds, 4),
            "statuses": repoll.statuses,
            "cpu_s": repoll.cpu.as_dict(repoll.seconds),
        },
        "peak_worker_rss_mb": round(max(one.peak_rss_mb, two.peak_rss_mb, repoll.peak_rss_mb), 1),
        "threads_per_worker": THREADS_PER_WORKER,
    }
