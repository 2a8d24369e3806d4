"""`tracker bench ingest`: feeds generated and served on loopback, ingested by the real refresh
path (fetch, parse, store, schedule) in 1 and 2 worker processes, against bare feedparser."""

import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import os
import resource
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

import feedparser
import psycopg
import structlog

from tracker.feeds.fetch import FetchPolicy
from tracker.feeds.refresh import RefreshConfig, refresh_feed
from tracker.storage import db, feeds

ITEMS_PER_FEED = 50
THREADS_PER_WORKER = 4
CLAIM_BATCH = 32
WARMUP_FEEDS = 40
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def feed_bytes(n: int, items: int = ITEMS_PER_FEED) -> bytes:
    """A realistic RSS 2.0 feed, distinct per n, deterministic."""
    start = datetime(2026, 11, 1, tzinfo=UTC)

    def description(i: int) -> str:
        return escape(
            f"<p>Officials in district {n} said on day {i} that the situation is "
            "<b>under control</b>, while residents shared videos online.</p>"
        )

    entries = "".join(
        f"<item><title>{escape(f'Outlet {n} reports on development {i} in the region')}</title>"
        f"<link>https://outlet{n}.example/news/{i}?utm_source=rss</link>"
        f"<guid isPermaLink='false'>outlet-{n}-item-{i}</guid>"
        f"<pubDate>{format_datetime(start + timedelta(hours=i * 7 + n % 5))}</pubDate>"
        f"<description>{description(i)}</description>"
        f"<category>region-{n % 7}</category></item>"
        for i in range(items)
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Outlet {n}</title><link>https://outlet{n}.example/</link>"
        f"<description>Generated feed {n}</description><language>en</language>"
        f"{entries}</channel></rss>"
    ).encode()


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:16]}"'


def _kind_size(kind: str) -> int:
    return ITEMS_PER_FEED if kind == "feed" else 5


@dataclass(frozen=True)
class _Responses:
    """One path's answers, rendered once: the full response and, with validators, a 304."""

    etag: bytes | None
    full: bytes
    not_modified: bytes


def _render(body: bytes, etag: str | None) -> _Responses:
    validator = f"ETag: {etag}\r\n" if etag else ""
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
        f"Content-Length: {len(body)}\r\n{validator}\r\n"
    )
    return _Responses(
        etag=etag.encode() if etag else None,
        full=head.encode() + body,
        not_modified=b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n"
        + validator.encode()
        + b"\r\n",
    )


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class _Connection(asyncio.Protocol):
    """HTTP/1.1 GETs on one connection, answered from pre-rendered bytes."""

    def __init__(self, corpus: "CorpusServer") -> None:
        self.corpus = corpus
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\r\n\r\n" in self.pending:
            head, _, self.pending = self.pending.partition(b"\r\n\r\n")
            assert self.transport is not None
            self.transport.write(self.corpus.answer(head))


class CorpusServer:
    """Serves /feed/N (50 items) and /small/N; even N answer conditional GETs with 304, odd
    N have no validators, so only an unchanged-body hash can spare the parse.

    It shares the machine's cores with the workers and PostgreSQL, as a remote publisher
    would not: so it answers from responses rendered before the clock starts, on one event
    loop, rather than parsing and formatting each request in Python's http.server."""

    def __init__(self) -> None:
        self.responses: dict[bytes, _Responses] = {}
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def answer(self, head: bytes) -> bytes:
        request_line, *header_lines = head.split(b"\r\n")
        parts = request_line.split(b" ")
        path = parts[1] if len(parts) == 3 and parts[0] == b"GET" else b""
        found = self.responses.get(path) or self._rendered(path)
        if found is None:
            return NOT_FOUND
        if found.etag and _header(header_lines, b"if-none-match") == found.etag:
            return found.not_modified
        return found.full

    def _rendered(self, path: bytes) -> _Responses | None:
        kind, _, number = path.decode("latin-1").strip("/").partition("/")
        if kind not in ("feed", "small") or not number.isdigit():
            return None
        self.warm(kind, range(int(number), int(number) + 1))
        return self.responses[path]

    def warm(self, kind: str, numbers: range) -> None:
        """Render bodies before the clock starts."""
        for n in numbers:
            body = feed_bytes(n, _kind_size(kind))
            self.responses[f"/{kind}/{n}".encode()] = _render(
                body, _etag(body) if n % 2 == 0 else None
            )

    def url(self, kind: str, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}/{n}"

    def etag_of(self, kind: str, n: int) -> str | None:
        body = feed_bytes(n, _kind_size(kind))
        return _etag(body) if n % 2 == 0 else None

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _header(lines: list[bytes], name: bytes) -> bytes:
    for line in lines:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return b""


@dataclass(frozen=True)
class Cpu:
    """CPU seconds spent during a run, by whom: the worker processes, their PostgreSQL
    sessions, the corpus server (this process), and the whole machine (all cores), whose
    remainder is everything else: PostgreSQL's background processes and other users."""

    workers: float
    db_sessions: float | None
    corpus_server: float
    machine: float | None

    def as_dict(self, seconds: float) -> dict[str, float | None]:
        ours = self.workers + (self.db_sessions or 0) + self.corpus_server
        return {
            "workers": round(self.workers, 2),
            "worker_db_sessions": _rounded(self.db_sessions),
            "corpus_server": round(self.corpus_server, 2),
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


def _machine_busy_s() -> float | None:
    """Busy CPU seconds of all cores since boot (Linux), idle and I/O wait excluded."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


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
    db_url: str, config: RefreshConfig, statuses: Counter[str], sessions: list[float | None]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            with conn.transaction():
                leases = feeds.claim_due(conn, CLAIM_BATCH, 600, per_host=10_000)
            if not leases:
                sessions.append(_session_cpu_s(conn))
                return
            for lease in leases:
                statuses[refresh_feed(conn, lease, config).status] += 1


def _worker_process(db_url: str, out: Any, start: Any, threads: int) -> None:
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
        threading.Thread(target=_worker_thread, args=(db_url, config, counted, sessions))
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


def run_workers(db_url: str, processes: int, threads: int = THREADS_PER_WORKER) -> Run:
    """Time from the moment every worker is ready until the last one runs out of due feeds;
    interpreter start-up and imports are not ingestion and stay off the clock."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start = context.Barrier(processes + 1)
    procs = [
        context.Process(target=_worker_process, args=(db_url, out, start, threads))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    start.wait()
    started, server_cpu, machine = time.monotonic(), _rusage_cpu_s(), _machine_busy_s()
    results = [out.get() for _ in procs]
    # This process only waited on the queue meanwhile: its CPU is the corpus server's.
    server_cpu, machine_end = _rusage_cpu_s() - server_cpu, _machine_busy_s()
    for p in procs:
        p.join()
    seconds = max(r[2] for r in results) - started
    total: Counter[str] = Counter()
    for r in results:
        total.update(r[0])
    sessions = [r[4] for r in results]
    cpu = Cpu(
        workers=sum(r[3] for r in results),
        db_sessions=None if None in sessions else sum(s or 0 for s in sessions),
        corpus_server=server_cpu,
        machine=None if machine is None or machine_end is None else machine_end - machine,
    )
    return Run(seconds, dict(total), max(r[1] for r in results), cpu)


def bare_parse_rate(n_feeds: int) -> float:
    """Items per second of feedparser.parse alone on the same bytes, in this process."""
    bodies = [feed_bytes(n) for n in range(n_feeds)]
    started = time.perf_counter()
    entries = sum(len(feedparser.parse(body).entries) for body in bodies)
    return entries / (time.perf_counter() - started)


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A migrated database of its own on the server, dropped afterwards."""
    name = f"rt_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    try:
        db.upgrade(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _register(conn: psycopg.Connection, urls: list[str]) -> None:
    new = [feeds.NewFeed(url=u, kind="media", min_interval_s=10) for u in urls]
    with conn.transaction():
        feeds.add_many(conn, new, poll_interval_s=900)
    # Fresh statistics, as autovacuum keeps them in a running system: tables that grew from
    # nothing within seconds otherwise get plans made for empty tables.
    conn.execute("ANALYZE")


def _fresh_ingest(
    server: CorpusServer, db_url: str, n_feeds: int, processes: int, offset: int
) -> Run:
    server.warm("feed", range(offset, offset + n_feeds))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE feeds SET enabled = false")
        _register(conn, [server.url("feed", offset + n) for n in range(n_feeds)])
    return run_workers(db_url, processes)


def _repoll(server: CorpusServer, db_url: str, n_feeds: int, processes: int) -> Run:
    """Feeds already polled once (validators and body hash stored, as after a first poll)."""
    server.warm("small", range(n_feeds))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE feeds SET enabled = false")
        urls = [server.url("small", n) for n in range(n_feeds)]
        _register(conn, urls)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "UPDATE feeds SET etag = %s, body_hash = %s WHERE url = %s",
                [
                    (server.etag_of("small", n), hashlib.sha256(feed_bytes(n, 5)).hexdigest(), url)
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
