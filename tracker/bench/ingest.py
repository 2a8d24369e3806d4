"""`tracker bench ingest`: feeds generated and served on loopback, ingested by the real refresh
path (fetch, parse, store, schedule) in 1 and 2 worker processes, against bare feedparser."""

import contextlib
import hashlib
import logging
import multiprocessing
import resource
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
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


class CorpusServer:
    """Serves /feed/N (50 items) and /small/N; even N answer conditional GETs with 304, odd
    N have no validators, so only an unchanged-body hash can spare the parse."""

    def __init__(self) -> None:
        self.cache: dict[str, bytes] = {}
        cache = self.cache

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                kind, _, number = self.path.strip("/").partition("/")
                body = cache.get(self.path)
                if body is None:
                    body = feed_bytes(int(number), ITEMS_PER_FEED if kind == "feed" else 5)
                    cache[self.path] = body
                etag = _etag(body) if int(number) % 2 == 0 else None
                if etag and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.daemon_threads = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.request_queue_size = 256
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def warm(self, kind: str, numbers: range) -> None:
        """Generate bodies before the clock starts: the server shares the machine's cores."""
        for n in numbers:
            self.cache[f"/{kind}/{n}"] = feed_bytes(n, ITEMS_PER_FEED if kind == "feed" else 5)

    def url(self, kind: str, n: int) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{kind}/{n}"

    def etag_of(self, kind: str, n: int) -> str | None:
        body = feed_bytes(n, ITEMS_PER_FEED if kind == "feed" else 5)
        return _etag(body) if n % 2 == 0 else None

    def close(self) -> None:
        self.httpd.shutdown()


@dataclass(frozen=True)
class Run:
    seconds: float
    statuses: dict[str, int]
    peak_rss_mb: float


def _worker_thread(db_url: str, config: RefreshConfig, statuses: Counter[str]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            with conn.transaction():
                leases = feeds.claim_due(conn, CLAIM_BATCH, 600, per_host=10_000)
            if not leases:
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
    statuses: Counter[str] = Counter()
    workers = [
        threading.Thread(target=_worker_thread, args=(db_url, config, statuses))
        for _ in range(threads)
    ]
    start.wait()  # every process imported and ready: the clock starts for all at once
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    finished = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on Linux
    out.put((dict(statuses), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, finished))


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
    started = time.monotonic()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    seconds = max(finished for _, _, finished in results) - started
    total: Counter[str] = Counter()
    for statuses, _, _ in results:
        total.update(statuses)
    return Run(seconds, dict(total), max(rss for _, rss, _ in results))


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
        },
        "two_workers": {
            "items_per_s": round(rate_two),
            "seconds": round(two.seconds, 2),
            "statuses": two.statuses,
        },
        "ratio_one_worker_to_bare_parse": round(rate_one / baseline, 3),
        "scaling_two_to_one_workers": round(rate_two / rate_one, 3),
        "repoll": {
            "feeds": repoll_feeds,
            "seconds": round(repoll.seconds, 2),
            "feeds_per_s": round(repoll_feeds / repoll.seconds),
            "spared_parse_fraction": round(spared / repoll_feeds, 4),
            "statuses": repoll.statuses,
        },
        "peak_worker_rss_mb": round(max(one.peak_rss_mb, two.peak_rss_mb, repoll.peak_rss_mb), 1),
        "threads_per_worker": THREADS_PER_WORKER,
    }
