"""Shared by the benchmarks: a generated feed corpus served on loopback, a scratch database
to ingest it into, and the machine's busy CPU time."""

import asyncio
import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

import psycopg

from tracker.storage import db, feeds

ITEMS_PER_FEED = 50
SMALL_ITEMS = 5
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
    return ITEMS_PER_FEED if kind == "feed" else SMALL_ITEMS


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


def machine_busy_s() -> float | None:
    """Busy CPU seconds of all cores since boot (Linux), idle and I/O wait excluded."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


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


@contextlib.contextmanager
def bench_database(server_url: str, reuse: str | None) -> Iterator[str]:
    """The database named `reuse` on the server, made and migrated if need be and kept; a
    scratch one when None."""
    if reuse is None:
        with scratch_database(server_url) as url:
            yield url
        return
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (reuse,)).fetchone():
            conn.execute(f'CREATE DATABASE "{reuse}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{reuse}", parts.query, ""))
    db.upgrade(url)
    yield url


def target(value: float, limit: float, at_most: bool = True) -> dict[str, Any]:
    """A figure against its target, for the benchmarks' reports."""
    met = value <= limit if at_most else value >= limit
    return {"value": value, "target": f"{'<=' if at_most else '>='} {limit:g}", "met": met}


def register(conn: psycopg.Connection, urls: list[str], poll_interval_s: int = 900) -> None:
    new = [feeds.NewFeed(url=u, kind="media", min_interval_s=10) for u in urls]
    with conn.transaction():
        feeds.add_many(conn, new, poll_interval_s=poll_interval_s)
    # Fresh statistics, as autovacuum keeps them in a running system: tables that grew from
    # nothing within seconds otherwise get plans made for empty tables.
    conn.execute("ANALYZE")
