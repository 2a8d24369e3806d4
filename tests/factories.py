"""What the tests build again and again, in one place: rows written straight into the test
database (users, feeds, stories, items, classifications, pairs, reviews, subscriptions) and
logging in, through a test client's login form or a browser page.

Row builders take an open connection or a database URL (they then connect, write and commit).
Their keyword arguments carry the variations the callers need; the defaults are the common case.
"""

import contextlib
import functools
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import psycopg
from psycopg.types.json import Jsonb

from tracker.domain import ParsedEntry
from tracker.pipeline import pairing
from tracker.storage import users
from tracker.storage.pairs import NewPair
from tracker.storage.users import User
from tracker.usecases import accounts

if TYPE_CHECKING:
    from playwright.sync_api import Page

PASSWORD = "a long enough password"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
# When items were seen and pairs made, unless a test says otherwise.
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
# The one pair of `add_one_pair`.
RUMOUR = "Romanian F-16s are secretly flying missions over Ukraine"
CLARIFICATION = "Ministry of Defence: the F-16 report was misrepresented"

Db = psycopg.Connection | str
Client = TypeVar("Client", bound=httpx.Client)


@contextlib.contextmanager
def connected(db: Db) -> Iterator[psycopg.Connection]:
    """The connection itself, or a new one to the URL, committed and closed afterwards."""
    if isinstance(db, str):
        with psycopg.connect(db) as conn:
            yield conn
    else:
        yield db


def insert(db: Db, statement: str, *params: Any) -> int:
    """Run an INSERT and return the new row's id."""
    with connected(db) as conn:
        row = conn.execute(statement + " RETURNING id", params).fetchone()
    assert row is not None
    return int(row[0])


# --- users -------------------------------------------------------------------------------------


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    # Hashing is slow on purpose; one hash per password serves every test.
    return accounts.hash_password(password)


def add_user(
    db: Db, email: str, role: str, *, password: str = PASSWORD, exist_ok: bool = False
) -> int:
    """A user who may log in with the password. With `exist_ok`, a user of that email who is
    there already is kept as is; otherwise a second one is refused (a unique violation)."""
    with connected(db) as conn:
        found = users.get_by_email(conn, email) if exist_ok else None
        if found is not None:
            return found.id
        return users.create(conn, email, password_hash(password), role).id


def analyst(conn: psycopg.Connection, email: str = "ana@example.org") -> User:
    """An analyst, as the use cases take one."""
    found = users.get(conn, add_user(conn, email, "analyst", exist_ok=True))
    assert found is not None
    return found


# --- feeds, stories, items, pairs --------------------------------------------------------------


def add_feed(
    db: Db,
    name: str,
    kind: str = "media",
    *,
    title: str | None = None,
    titled: bool = True,
    language: str | None = None,
    tags: Sequence[str] = (),
    next_poll_at: datetime | None = None,
    url: str | None = None,
    host: str = "",
    status: str = "new",
    last_error: str | None = None,
    error_count: int = 0,
) -> int:
    """A feed at `url`, by default https://<name, lower case, dashes for spaces>.example/rss,
    titled `title` (by default `name`), or untitled when `titled` is false. Its health is
    `status`, `last_error` and `error_count`; its `host` is left empty unless given."""
    return insert(
        db,
        """INSERT INTO feeds (url, host, title, kind, language, tags, next_poll_at, status,
                              last_error, error_count)
           VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now()), %s, %s, %s)""",
        url or f"https://{name.lower().replace(' ', '-')}.example/rss",
        host,
        (title or name) if titled else None,
        kind,
        language,
        list(tags),
        next_poll_at,
        status,
        last_error,
        error_count,
    )


def add_story(db: Db, title: str, first_seen_at: datetime | None = None) -> int:
    """A story, first seen at `first_seen_at` (by default now)."""
    if first_seen_at is None:
        return insert(db, "INSERT INTO stories (title) VALUES (%s)", title)
    return insert(
        db, "INSERT INTO stories (title, first_seen_at) VALUES (%s, %s)", title, first_seen_at
    )


def add_item(
    db: Db,
    feed_id: int,
    title: str,
    summary: str = "",
    language: str | None = "en",
    seen_at: datetime | None = T0,
    *,
    story_id: int | None = None,
    url: str | None = None,
    content_html: str = "",
    dedupe_key: str | None = None,
    fetched_at: datetime | None = None,
) -> int:
    """An item written past ingestion (and its sanitiser): the pages must be safe alone.
    `seen_at` is its published_at; the dedupe key is random unless given."""
    return insert(
        db,
        """INSERT INTO items (feed_id, dedupe_key, title, summary, language, published_at,
                              fetched_at, content_hash, content_html, url, story_id)
           VALUES (%s, coalesce(%s, gen_random_uuid()::text), %s, %s, %s, %s,
                   coalesce(%s, now()), 'h', %s, %s, %s)""",
        feed_id,
        dedupe_key,
        title,
        summary,
        language,
        seen_at,
        fetched_at,
        content_html,
        url,
        story_id,
    )


def add_pair(
    db: Db,
    rumour_id: int,
    clarification_id: int,
    score: float = 0.5,
    status: str = "suggested",
    created_at: datetime | None = T0,
    *,
    terms: Sequence[str] | None = ("f-16",),
) -> int:
    """A pair of two existing items; `terms` are the shared terms of its explanation, which
    is empty ({}) when `terms` is None."""
    return insert(
        db,
        """INSERT INTO pairs (rumour_id, clarification_id, score, explanation, scorer_version,
                              status, created_at)
           VALUES (%s, %s, %s, %s, 'test', %s, coalesce(%s, now()))""",
        rumour_id,
        clarification_id,
        score,
        Jsonb({} if terms is None else {"shared_terms": list(terms)}),
        status,
        created_at,
    )


def add_classification(
    db: Db,
    item_id: int,
    label: str,
    probability: float,
    *,
    model_version: str = "m1",
    created_at: datetime | None = None,
) -> int:
    """A model's classification of an item, made at `created_at` (by default now)."""
    return insert(
        db,
        """INSERT INTO classifications (item_id, model_version, label, probability, created_at)
           VALUES (%s, %s, %s, %s, coalesce(%s, now()))""",
        item_id,
        model_version,
        label,
        probability,
        created_at,
    )


def add_review(
    db: Db,
    pair_id: int,
    decision: str,
    *,
    user_id: int | None = None,
    reason: str | None = None,
    previous_status: str | None = None,
    created_at: datetime | None = None,
) -> int:
    """A decision on a pair, by `user_id` (or nobody), made at `created_at` (by default now)."""
    return insert(
        db,
        """INSERT INTO reviews (pair_id, user_id, decision, reason, previous_status, created_at)
           VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()))""",
        pair_id,
        user_id,
        decision,
        reason,
        previous_status,
        created_at,
    )


def add_subscription(
    db: Db,
    email: str,
    kind: str = "rumours",
    *,
    story_id: int | None = None,
    item_id: int | None = None,
) -> int:
    """An alert subscription, defaults otherwise; a 'story' one follows `story_id` or `item_id`."""
    return insert(
        db,
        """INSERT INTO alert_subscriptions (email, kind, story_id, item_id)
           VALUES (%s, %s, %s, %s)""",
        email,
        kind,
        story_id,
        item_id,
    )


def suggest(conn: psycopg.Connection, rumour_id: int, clarification_id: int, score: float) -> int:
    """A pair suggested as the pairing stage stores one: with its followers' alerts."""
    return pairing.store(
        conn, [NewPair(rumour_id, clarification_id, score, {}, "suggested")], "test"
    )


def add_one_pair(
    db: Db, rumour: str = RUMOUR, clarification: str = CLARIFICATION, url: str | None = None
) -> int:
    """The web pages' pair: a Daily Courier rumour (its story seen in that one outlet) and a
    Ministry of Defence clarification, scored 0.8765. The feeds' URLs are fixed: one a test."""
    with connected(db) as conn:
        media = add_feed(conn, "courier", title="Daily Courier")
        official = add_feed(conn, "mod", "official", title="Ministry of Defence")
        story = add_story(conn, rumour)
        rumour_id = add_item(
            conn, media, rumour, "Pilots seen.", None, None, story_id=story, url=url
        )
        clarification_id = add_item(
            conn, official, clarification, "The report is false.", None, None
        )
        return add_pair(
            conn, rumour_id, clarification_id, 0.8765, created_at=None, terms=("f-16", "ukraine")
        )


def add_queue_pair(
    db: Db,
    score: float,
    *,
    rumour: str = "Troops are massing at the border",
    clarification: str = "Ministry: no troops at the border",
    language: str = "en",
    kind: str = "official",
    tags: Sequence[str] = (),
    terms: Sequence[str] = ("troops", "border"),
    created_at: datetime | None = None,
) -> int:
    """A pair for the review queue, on outlets of its own each call: a Courier rumour whose
    story the Ministry echoes (seen in 2 outlets), and the Ministry's clarification."""
    seen = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with connected(db) as conn:
        row = conn.execute("SELECT count(*) FROM feeds").fetchone()
        assert row is not None
        n = int(row[0])
        media = add_feed(conn, f"courier{n}", title="Courier")
        official = add_feed(conn, f"ministry{n}", kind, title="Ministry", tags=tags)
        story = add_story(conn, rumour)
        rumour_id = add_item(
            conn, media, rumour, "", language, seen, story_id=story, dedupe_key=f"r{n}"
        )
        add_item(
            conn, official, "echo " + rumour, "", language, seen, story_id=story, dedupe_key=f"e{n}"
        )
        clarification_id = add_item(
            conn, official, clarification, "", language, seen, dedupe_key=f"c{n}"
        )
        return add_pair(
            conn, rumour_id, clarification_id, score, created_at=created_at, terms=terms
        )


def entry(key: str, title: str, summary: str, published_at: datetime) -> ParsedEntry:
    """A parsed English feed entry whose key is both its dedupe key and its content hash."""
    return ParsedEntry(
        dedupe_key=key,
        guid=None,
        url=None,
        title=title,
        summary=summary,
        language="en",
        published_at=published_at,
        content_hash=key,
    )


# --- logging in --------------------------------------------------------------------------------


def csrf_token(client: httpx.Client, path: str = "/login") -> str:
    """The CSRF token of the form on the page at `path`."""
    found = CSRF_INPUT.search(client.get(path).text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def log_in(
    client: httpx.Client,
    email: str,
    password: str = PASSWORD,
    *,
    follow_redirects: bool | None = None,
) -> httpx.Response:
    """Post the login form (with its CSRF token) through a TestClient or an httpx client and
    return the answer, whatever it is: redirects are followed as the client does unless
    `follow_redirects` says."""
    form = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if follow_redirects is None:
        return client.post("/login", data=form)
    return client.post("/login", data=form, follow_redirects=follow_redirects)


def logged_in(client: Client, email: str, password: str = PASSWORD) -> Client:
    """The client (a TestClient stays one), after a login that must succeed."""
    response = log_in(client, email, password)
    assert response.status_code == 303, (response.status_code, response.text[-500:])
    return client


def log_in_page(page: "Page", email: str, password: str = PASSWORD) -> None:
    """Log a Playwright page in through the login form, as a person would."""
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
