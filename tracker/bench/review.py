"""`tracker bench review`: server time of the review queue page and of the API's pair list
with N items and P pairs loaded, over many requests with varied filters and pages.

The data is generated inside PostgreSQL (generate_series), so a million items load in a few
minutes; the real FastAPI app answers in-process (Starlette's TestClient: no sockets), as an
analyst logged in through the login form and as an API client with a bearer token."""

import itertools
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracker.bench.corpus import bench_database, target
from tracker.bench.pairing import percentiles
from tracker.config import Settings
from tracker.domain import FEED_KINDS
from tracker.storage import api_tokens, users
from tracker.usecases import accounts
from tracker.web import auth
from tracker.web.app import create_app

TARGET_P95_MS = 100
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 365
LANGUAGES = ("en", "ro", "uk", "ru", "en-GB")
TAGS = ("defence", "health", "energy", "elections", "economy")
FEEDS_PER_KIND = 12
STORY_SIZE = 8  # items per story on average: the queue shows each rumour's spread
ANALYST = "bench-analyst@example.invalid"
PASSWORD = "bench password, not a secret"  # noqa: S105 - a throwaway account in a bench db
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
WARMUP_REQUESTS = 5

# Text of about the length of real headlines and summaries, built from a few stock words so
# the pages carry realistic amounts of text to escape and highlight.
ITEMS_SQL = """
INSERT INTO items (id, feed_id, dedupe_key, url, title, summary, language, published_at,
                   fetched_at, content_hash, story_id)
SELECT g, f.id, 'rbench-' || g, 'https://bench.example/items/' || g,
       format('Report %%s: %%s %%s near %%s', g, (ARRAY['tanks', 'drones', 'fuel', 'ballots',
              'vaccines', 'pensions', 'bridges', 'flights'])[1 + g %% 8],
              (ARRAY['moved', 'seized', 'banned', 'halted', 'spotted'])[1 + g %% 5],
              'Place' || (g %% 997)),
       repeat('Officials said the claim spread quickly in local groups; no evidence. ', 3),
       f.language,
       %(end)s::timestamptz - make_interval(secs => (g * 7919 %% (%(days)s * 86400))),
       %(end)s::timestamptz - make_interval(secs => (g * 7919 %% (%(days)s * 86400)) - 300),
       'rbench-' || g,
       CASE WHEN g %% 2 = 1 THEN 1 + (g / 2) %% %(stories)s END
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
JOIN feeds f ON f.id = %(first_feed)s + g %% %(feeds)s
"""

# Pair k joins rumour 2j+1 and clarification 2j+2, with j = k * stride mod (items / 2): a
# stride coprime with that spreads the pairs over the whole table, each item in one pair at
# most. Most are still suggested, as in a working queue; the status is drawn from a hash of
# the rumour's id, since any modulus of k or j would tie it to the items' feeds (also a
# modulus of the id) and leave some filter combinations empty.
PAIRS_SQL = """
INSERT INTO pairs (rumour_id, clarification_id, score, explanation, scorer_version, status,
                   created_at, updated_at)
SELECT 2 * j + 1, 2 * j + 2, random()::real,
       jsonb_build_object('shared_terms', jsonb_build_array('tanks', 'Place' || (j %% 997))),
       'bench', CASE WHEN abs(hashint8(2 * j + 1)) %% 10 < 7 THEN 'suggested'
                     WHEN abs(hashint8(2 * j + 1)) %% 10 < 9 THEN 'confirmed'
                     ELSE 'rejected' END,
       at, at
FROM generate_series(1::bigint, %(pairs)s) AS k,
     LATERAL (SELECT k * %(stride)s %% %(halves)s AS j,
                     %(end)s::timestamptz - make_interval(secs => random() * %(days)s * 86400)
                         AS at) x
"""


def bench(
    server_url: str,
    n_items: int = 1_000_000,
    n_pairs: int = 100_000,
    requests: int = 300,
    progress: Callable[[str], None] = lambda _: None,
    reuse: str | None = None,
) -> dict[str, Any]:
    """With `reuse`, the named database is kept and, when it holds exactly these sizes, not
    loaded again (only the analyst and the claims are reset)."""
    with (
        bench_database(server_url, reuse) as db_url,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        load_seconds: float | None = None
        if not (reuse and loaded(conn, n_items, n_pairs)):
            started = time.perf_counter()
            load(conn, n_items, n_pairs, progress)
            # To the millisecond: a small load takes well under a tenth of a second.
            load_seconds = round(time.perf_counter() - started, 3)
        token = bench_accounts(conn)
        progress(f"measuring {requests} requests per endpoint ...")
        measured = measure(db_url, token, requests, random.Random(n_items))  # noqa: S311
    return _figures(n_items, n_pairs, requests, load_seconds, measured)


def load(
    conn: psycopg.Connection, n_items: int, n_pairs: int, progress: Callable[[str], None]
) -> None:
    """Feeds of every kind, language and tag; items (half of them in stories); pairs. The
    secondary indexes are dropped for the load and built again, then statistics refreshed."""
    if n_pairs * 2 > n_items:
        raise ValueError("each pair needs two items of its own: --pairs at most --items / 2")
    first_feed = _add_feeds(conn)
    indexes = _secondary_indexes(conn)
    with conn.transaction(), conn.cursor() as cur:
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        stories = max(n_items // 2 // STORY_SIZE, 1)
        progress(f"loading {stories} stories and {n_items} items ...")
        cur.execute(
            "INSERT INTO stories (id, title, first_seen_at) SELECT g, 'Story ' || g, %s "
            "FROM generate_series(1, %s) AS g",
            (END - timedelta(days=DAYS), stories),
        )
        params = {
            "end": END,
            "days": DAYS,
            "stories": stories,
            "first_feed": first_feed,
            "feeds": len(FEED_KINDS) * FEEDS_PER_KIND,
        }
        chunk = 100_000
        for start in range(1, n_items + 1, chunk):
            last = min(start + chunk - 1, n_items)
            cur.execute(ITEMS_SQL, {**params, "first": start, "last": last})
            progress(f"  {last} items")
        progress(f"loading {n_pairs} pairs ...")
        halves = n_items // 2
        stride = next(s for s in itertools.count(7919) if math.gcd(s, halves) == 1)
        cur.execute(PAIRS_SQL, {**params, "pairs": n_pairs, "halves": halves, "stride": stride})
        for table in ("items", "stories", "pairs"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        progress(f"building {len(indexes)} indexes ...")
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cur.execute(definition)
    progress("VACUUM ANALYZE ...")
    conn.execute("VACUUM ANALYZE feeds, stories, items, pairs")


def _add_feeds(conn: psycopg.Connection) -> int:
    """FEEDS_PER_KIND feeds of every kind, languages and tags in rotation (out of step, so
    a language is not always seen with the same tag); the first id."""
    rows = [
        (f"https://{kind}{n}.example/feed.xml", f"{kind} {n}", kind,
         LANGUAGES[n % len(LANGUAGES)], [TAGS[(n + n // len(TAGS)) % len(TAGS)]])
        for kind in FEED_KINDS
        for n in range(FEEDS_PER_KIND)
    ]  # fmt: skip
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO feeds (url, title, kind, language, tags) VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
        cur.execute("SELECT min(id) FROM feeds")
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Indexes of items and pairs that back no constraint."""
    return [
        (str(name), str(definition))
        for name, definition in conn.execute(
            """SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
               WHERE t.relname IN ('items', 'pairs')
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"""
        ).fetchall()
    ]


def loaded(conn: psycopg.Connection, n_items: int, n_pairs: int) -> bool:
    """True when a reused database holds exactly these sizes; raises when it holds others."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM pairs)"
    ).fetchone()
    found = (int(row[0]), int(row[1])) if row else (0, 0)
    if found == (0, 0):
        return False
    if found != (n_items, n_pairs):
        raise RuntimeError(
            f"the reused database holds {found[0]} items and {found[1]} pairs, "
            f"not {n_items} and {n_pairs}"
        )
    return True


def bench_accounts(conn: psycopg.Connection) -> str:
    """A fresh analyst (with no claims or skips left from a previous run) and a viewer API
    token of theirs; returns the token."""
    with conn.transaction():
        conn.execute("DELETE FROM users WHERE email = %s", (ANALYST,))
        conn.execute("UPDATE pairs SET claimed_by = NULL, claimed_until = NULL "
                     "WHERE claimed_by IS NOT NULL")  # fmt: skip
        user = users.create(conn, ANALYST, accounts.hash_password(PASSWORD), "analyst")
        token = accounts.new_api_token()
        api_tokens.create(conn, user.id, "bench", "analyst", accounts.token_digest(token))
    return token


def queue_paths(rng: random.Random, count: int) -> list[str]:
    """Queue pages as analysts ask for them: mostly the default view, often one or two
    filters, sometimes a date range or another status."""
    paths = []
    for _ in range(count):
        query: dict[str, str] = {}
        if rng.random() < 0.3:
            query["status"] = rng.choice(("confirmed", "rejected", "all"))
        if rng.random() < 0.3:
            query["language"] = rng.choice(LANGUAGES[:4])
        if rng.random() < 0.3:
            query["kind"] = rng.choice(FEED_KINDS)
        if rng.random() < 0.2:
            query["tag"] = rng.choice(TAGS)
        if rng.random() < 0.3:
            low = round(rng.uniform(0, 0.8), 2)
            query.update(score_min=str(low), score_max=str(round(low + 0.2, 2)))
        if rng.random() < 0.2:
            start = END.date() - timedelta(days=rng.randint(7, DAYS))
            query.update({"from": start.isoformat(), "to": str(start + timedelta(days=30))})
        paths.append("/?" + urlencode(query) if query else "/")
    return paths


def api_queries(rng: random.Random, count: int) -> list[dict[str, str]]:
    queries = []
    for _ in range(count):
        query: dict[str, str] = {"limit": str(rng.choice((20, 50, 100)))}
        if rng.random() < 0.6:
            query["status"] = rng.choice(("suggested", "suggested", "confirmed", "rejected"))
        if rng.random() < 0.3:
            query["language"] = rng.choice(("en", "ro", "uk", "ru"))
        if rng.random() < 0.3:
            query["feed_kind"] = rng.choice(FEED_KINDS)
        if rng.random() < 0.3:
            query["min_score"] = str(round(rng.uniform(0, 0.9), 2))
        if rng.random() < 0.2:
            since = END - timedelta(days=rng.randint(7, DAYS))
            query.update(since=since.isoformat(), until=(since + timedelta(days=30)).isoformat())
        queries.append(query)
    return queries


class ServerTimer:
    """ASGI wrapper that notes how long the app took over each request, from its call to the
    last body chunk: the server's time, without the test client's thread hand-offs. Also the
    CPU time this process spent meanwhile: on a shared machine, what the request cost when the
    core was ours (PostgreSQL's own CPU is not in it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_ms = 0.0
        self.last_cpu_ms = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, cpu = time.perf_counter(), time.process_time()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - started) * 1000
                self.last_cpu_ms = (time.process_time() - cpu) * 1000
            await send(message)

        await self.app(scope, receive, timed_send)


def measure(db_url: str, token: str, requests: int, rng: random.Random) -> dict[str, Any]:
    return {name: summary(times) for name, times in sample(db_url, token, requests, rng).items()}


Timed = list[tuple["Timing", str]]


def sample(db_url: str, token: str, requests: int, rng: random.Random) -> dict[str, Timed]:
    """Each request's server time and path: the queue page, then the API's pair list."""
    settings = Settings(database_url=SecretStr(db_url), secret_key=SecretStr("b" * 40))
    timer = ServerTimer(create_app(settings))
    with TestClient(timer, follow_redirects=False) as client:
        _log_in(client)
        get = Getter(client, timer)
        queue = _timed(get, queue_paths(rng, requests))
        api = _timed_api(get.bearer(token), api_queries(rng, requests), requests)
    return {"queue_page": queue, "api_pairs": api}


def _log_in(client: TestClient) -> None:
    page = client.get(auth.LOGIN_PATH)
    found = CSRF_INPUT.search(page.text)
    if found is None:
        raise RuntimeError("the login page carries no CSRF token")
    form = {"email": ANALYST, "password": PASSWORD, "csrf_token": found.group(1)}
    answer = client.post(auth.LOGIN_PATH, data=form)
    if answer.status_code != 303:
        raise RuntimeError(f"logging in the bench analyst failed: {answer.status_code}")


@dataclass(frozen=True)
class Timing:
    ms: float
    cpu_ms: float


class Getter:
    """GETs that must succeed, timed by the server."""

    def __init__(
        self, client: TestClient, timer: ServerTimer, headers: dict[str, str] | None = None
    ):
        self.client, self.timer, self.headers = client, timer, headers or {}

    def bearer(self, token: str) -> "Getter":
        # The session cookie dropped: API requests are authorised by the token alone.
        self.client.cookies.clear()
        return Getter(self.client, self.timer, {"Authorization": f"Bearer {token}"})

    def __call__(self, path: str, params: dict[str, str] | None = None) -> tuple[Timing, Any]:
        answer = self.client.get(path, headers=self.headers, params=params)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path} {params} answered {answer.status_code}")
        return Timing(self.timer.last_ms, self.timer.last_cpu_ms), answer


def _timed(get: Getter, paths: list[str]) -> Timed:
    for path in paths[:WARMUP_REQUESTS]:  # untimed: templates compiled, pool connections open
        get(path)
    return [(get(path)[0], path) for path in paths]


def _timed_api(get: Getter, queries: list[dict[str, str]], requests: int) -> Timed:
    """Every query's first page and, while there is one and requests are left, its next pages
    (up to three): a client paging through a filtered list."""
    path = "/api/v1/pairs"
    for query in queries[:WARMUP_REQUESTS]:
        get(path, query)
    times: Timed = []
    for query in queries:
        cursor: str | None = None
        for _ in range(4):
            if len(times) >= requests:
                break
            paged = {**query, "cursor": cursor} if cursor else query
            elapsed, answer = get(path, paged)
            times.append((elapsed, f"{path}?{urlencode(paged)}"))
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
    return times


def summary(times: Timed) -> dict[str, Any]:
    slowest = max(times, key=lambda t: t[0].ms)
    return {
        "requests": len(times),
        "ms": percentiles([t.ms for t, _ in times]),
        "process_cpu_ms": percentiles([t.cpu_ms for t, _ in times]),
        "slowest": slowest[1],
    }


def _figures(
    n_items: int,
    n_pairs: int,
    requests: int,
    load_seconds: float | None,
    measured: dict[str, Any],
) -> dict[str, Any]:
    return {
        "items": n_items,
        "pairs": n_pairs,
        "reused": load_seconds is None,
        "load_seconds": load_seconds,
        "requests_per_endpoint": requests,
        **measured,
        "targets": {
            f"{name}_p95_ms": target(figures["ms"]["p95"], TARGET_P95_MS)
            for name, figures in measured.items()
        },
    }
