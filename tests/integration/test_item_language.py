"""Each item's language on a real PostgreSQL: detected from its text at ingestion (a feed over
HTTP, a JSON Lines archive), falling back to the declared language for short text, read by the
Items filter and search; and the backfill of items stored before, by the command."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import run_tracker
from tests.factories import add_feed, add_item, add_user, log_in
from tests.feedserver import FeedServer, Route
from tests.integration.test_ingest import LOOPBACK, lease_all, refresh
from tests.integration.test_web import make_app
from tracker.pipeline import archive
from tracker.storage import feeds

pytestmark = pytest.mark.integration

HIT = re.compile(r'<li class="hit" id="item-(\d+)">')
STATEMENT_RO = (
    "Ministerul Apărării Naționale precizează că informațiile apărute în presă despre "
    "avioanele F-16 au fost prezentate în mod distorsionat și nu corespund realității."
)
STATEMENT_EN = (
    "The Ministry of National Defence states that the information about the aircraft was "
    "misrepresented and does not reflect what actually happened over the border."
)


def rss(*items: tuple[str, str, str]) -> bytes:
    entries = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><description>{summary}</description>"
        "</item>"
        for guid, title, summary in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Ministry</title><language>en</language>{entries}</channel></rss>"
    ).encode()


def languages(conn: psycopg.Connection) -> dict[str, str | None]:
    rows = conn.execute("SELECT title, language FROM items").fetchall()
    return {title: language for title, language in rows}


@pytest.fixture
def analyst(db_url: str) -> Iterator[TestClient]:
    add_user(db_url, "ana@newsroom.example", "analyst")
    with TestClient(make_app(db_url), follow_redirects=False) as client:
        assert log_in(client, "ana@newsroom.example").status_code == 303
        yield client


def hits(client: TestClient, **params: str) -> set[int]:
    response = client.get("/items", params=params)
    assert response.status_code == 200, response.text
    return {int(i) for i in HIT.findall(response.text)}


def test_a_romanian_item_of_a_feed_tagged_english_is_stored_and_found_as_romanian(
    conn: psycopg.Connection, analyst: TestClient
) -> None:
    with FeedServer() as server:
        server.routes["/mapn.xml"] = Route(
            rss(
                ("1", "Precizare", STATEMENT_RO),
                ("2", "Statement", STATEMENT_EN),
                ("3", "Update", ""),
            )
        )
        feed, _ = feeds.add(conn, feeds.NewFeed(server.url("/mapn.xml"), "official", None, "en"))
        outcome = refresh(conn, lease_all(conn)[feed.id], LOOPBACK)
    assert outcome.status == "ok" and len(outcome.new_item_ids) == 3
    # The one-word item is too short to tell: it keeps the language its feed declares.
    assert languages(conn) == {"Precizare": "ro", "Statement": "en", "Update": "en"}
    ids: dict[str, int] = dict(conn.execute("SELECT title, id FROM items").fetchall())
    assert hits(analyst, language="ro") == {ids["Precizare"]}
    assert hits(analyst, language="en") == {ids["Statement"], ids["Update"]}
    # Search reads it in Romanian: the stemmed word finds another form of it.
    assert hits(analyst, q="informația", language="ro") == {ids["Precizare"]}


def test_an_archived_line_is_stored_in_the_language_of_its_text(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    lines = [
        {
            "feed_url": "https://mapn.example/rss",
            "title": "Precizare",
            "summary": STATEMENT_RO,
            "language": "en",
        },
        {"feed_url": "https://mapn.example/rss", "title": "Scurt", "language": "ro-RO"},
        {"feed_url": "https://mapn.example/rss", "title": "Brief"},
    ]
    path = tmp_path / "archive.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    add_feed(conn, "mapn", "official", titled=False, language="uk", host="mapn.example")
    report = archive.import_jsonl(conn, path, "official", lambda _: None)
    assert report.imported == 3
    assert languages(conn) == {"Precizare": "ro", "Scurt": "ro", "Brief": "uk"}


def test_the_backfill_detects_stored_items_once_and_the_filters_follow(
    conn: psycopg.Connection, cli_env: dict[str, str], analyst: TestClient
) -> None:
    feed = add_feed(conn, "mapn", "official", title="M", language="en")

    def item(title: str, summary: str, language: str | None) -> int:
        return add_item(conn, feed, title, summary, language, None, dedupe_key=title)

    romanian = item("Precizare", STATEMENT_RO, "en")
    english = item("Statement", STATEMENT_EN, "en-US")
    short = item("Update", "", None)
    assert hits(analyst, language="ro") == set()

    dry = run_tracker("items", "detect-language", "--batch", "2", "--dry-run", env=cli_env)
    assert dry.returncode == 0, dry.stderr
    assert "3 items: 3 would change" in dry.stdout and "en -> ro: 1" in dry.stdout
    assert languages(conn) == {"Precizare": "en", "Statement": "en-US", "Update": None}

    first = run_tracker("items", "detect-language", "--batch", "2", env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "3 items: 3 changed" in first.stdout
    assert languages(conn) == {"Precizare": "ro", "Statement": "en", "Update": "en"}
    assert hits(analyst, language="ro") == {romanian}
    assert hits(analyst, language="en") == {english, short}

    again = run_tracker("items", "detect-language", env=cli_env)
    assert again.returncode == 0, again.stderr
    assert "3 items: 0 changed" in again.stdout
