"""The Feeds page and its API on a real PostgreSQL: add with discovery from a loopback site
(allow-listed, as polling tests do), OPML import and export, poll now, disable and enable,
audit entries, and analysts refused."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.factories import add_feed, add_user, csrf_token, log_in
from tests.feedserver import FeedServer, Route
from tests.integration.test_access import add_token
from tests.integration.test_web import query
from tracker.config import Settings
from tracker.demo import FEEDS_DIR
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

BOSS = "boss@newsroom.example"
ANA = "ana@newsroom.example"
SITE = b'<html><head><link rel="alternate" type="application/rss+xml" href="/news.xml">'
VALID_OPML = b"""<?xml version="1.0"?><opml version="2.0"><body>
<outline text="Defence">
  <outline text="MoD" xmlUrl="https://mod.example/rss" language="ro"/>
  <outline text="Courier" xmlUrl="https://courier.example/rss"/>
</outline>
<outline text="bad" xmlUrl="ftp://x.example/f"/>
</body></opml>"""
NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.DOTALL)
ERROR = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.DOTALL)


def make_client(db_url: str, **settings: Any) -> TestClient:
    app = create_app(
        Settings(database_url=SecretStr(db_url), secret_key=SecretStr("x" * 40), **settings)
    )
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def admin(db_url: str) -> Iterator[TestClient]:
    # Loopback is allow-listed here as in the polling tests; the guard itself is tested below.
    with make_client(db_url, fetch_allow_networks=["127.0.0.0/8"]) as client:
        add_user(db_url, BOSS, "admin")
        log_in(client, BOSS)
        yield client


def feeds_in(db_url: str) -> list[tuple[Any, ...]]:
    return query(db_url, "SELECT url, kind, language, tags, enabled FROM feeds ORDER BY id")


def actions(db_url: str) -> list[str]:
    return [row[0] for row in query(db_url, "SELECT action FROM audit_log ORDER BY id")]


def text_of(pattern: re.Pattern[str], page: str) -> str:
    found = pattern.search(page)
    assert found, page
    return " ".join(found.group(1).split())


def post(client: TestClient, path: str, **form: Any) -> httpx.Response:
    response: httpx.Response = client.post(
        path, data={"csrf_token": csrf_token(client, "/feeds"), **form}
    )
    return response


def test_an_admin_adds_a_feed_by_its_sites_url_with_discovery(
    admin: TestClient, db_url: str
) -> None:
    with FeedServer() as server:
        server.routes["/"] = Route(
            SITE + b"</head><body>Home</body></html>", content_type="text/html"
        )
        server.routes["/news.xml"] = Route((FEEDS_DIR / "daily-courier.xml").read_bytes())
        form = {"url": server.url("/"), "discover": "1", "kind": "media", "language": "RO"}
        added = post(admin, "/feeds", **form, tags="defence, Ukraine")
    assert added.status_code == 303 and added.headers["location"] == "/feeds"
    assert feeds_in(db_url) == [
        (server.url("/news.xml"), "media", "ro", ["defence", "ukraine"], True)
    ]
    page = admin.get("/feeds")
    assert f"added: {server.url('/news.xml')}" in text_of(NOTICE, page.text)
    assert actions(db_url)[-1] == "feed.add"


def test_discovery_from_the_web_goes_through_the_ssrf_guard(db_url: str) -> None:
    with make_client(db_url) as client, FeedServer() as server:
        add_user(db_url, BOSS, "admin")
        log_in(client, BOSS)
        server.routes["/"] = Route(SITE + b"</head></html>", content_type="text/html")
        refused = post(client, "/feeds", url=server.url("/"), discover="1", kind="media")
        assert server.requests == []  # refused at connect time: nothing reached the server
    assert refused.status_code == 400 and "127.0.0.1" in text_of(ERROR, refused.text)
    assert f'value="{server.url("/")}"' in refused.text  # the form comes back as typed
    assert feeds_in(db_url) == []


def test_bad_fields_are_a_message_and_add_nothing(admin: TestClient, db_url: str) -> None:
    for form, message in (
        ({"url": "ftp://a.example/f"}, "must start with http:// or https://"),
        ({"url": "https://a.example/f", "kind": "blog"}, "kind must be one of"),
        ({"url": "https://a.example/f", "language": "english!"}, "not a language code"),
    ):
        refused = post(admin, "/feeds", **form)
        assert refused.status_code == 400 and message in text_of(ERROR, refused.text)
    assert feeds_in(db_url) == []


def upload(client: TestClient, data: bytes, kind: str = "official") -> Any:
    token = csrf_token(client, "/feeds")
    files = {"file": ("list.opml", data, "text/x-opml")}
    return client.post("/feeds/import", data={"csrf_token": token, "kind": kind}, files=files)


def test_a_malformed_opml_upload_is_a_clear_error_and_adds_nothing(
    admin: TestClient, db_url: str
) -> None:
    broken = upload(admin, b'<opml><body><outline xmlUrl="https://a.example/f">')
    assert broken.status_code == 400
    assert text_of(ERROR, broken.text).startswith("Nothing imported:")
    assert "line" in text_of(ERROR, broken.text)
    empty = upload(admin, b"")
    assert empty.status_code == 400 and "Choose an OPML file" in empty.text
    assert feeds_in(db_url) == [] and "feeds.import_opml" not in actions(db_url)


def test_an_opml_upload_reports_added_skipped_and_errors_and_exports_back(
    admin: TestClient, db_url: str
) -> None:
    imported = upload(admin, VALID_OPML)
    assert imported.status_code == 200
    assert "2 added, 0 already registered, 1 skipped" in text_of(NOTICE, imported.text)
    assert "ftp://x.example/f" in imported.text
    again = upload(admin, VALID_OPML)
    assert "0 added, 2 already registered, 1 skipped" in text_of(NOTICE, again.text)
    assert feeds_in(db_url) == [
        ("https://mod.example/rss", "official", "ro", ["defence"], True),
        ("https://courier.example/rss", "official", None, ["defence"], True),
    ]
    exported = admin.get("/feeds/export.opml")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM feeds")
    # The export reads back as the same feeds, kinds and tags included.
    assert "2 added" in text_of(NOTICE, upload(admin, exported.content, kind="media").text)
    assert feeds_in(db_url) == [
        ("https://mod.example/rss", "official", "ro", ["defence"], True),
        ("https://courier.example/rss", "official", None, ["defence"], True),
    ]


def next_poll(db_url: str, feed_id: int) -> datetime:
    value = query(db_url, "SELECT next_poll_at FROM feeds WHERE id = %s", feed_id)[0][0]
    assert isinstance(value, datetime)
    return value


def test_poll_now_makes_the_feed_due_and_disable_and_enable_are_audited(
    admin: TestClient, db_url: str
) -> None:
    feed_id = add_feed(
        db_url, "a", titled=False, next_poll_at=datetime.now(UTC) + timedelta(hours=1)
    )
    assert next_poll(db_url, feed_id) > datetime.now(UTC)
    polled = post(admin, f"/feeds/{feed_id}/poll")
    assert polled.status_code == 303 and next_poll(db_url, feed_id) <= datetime.now(UTC)
    assert "is due now" in text_of(NOTICE, admin.get("/feeds").text)
    assert post(admin, f"/feeds/{feed_id}/disable").status_code == 303
    assert feeds_in(db_url)[0][4] is False
    page = admin.get("/feeds").text
    assert f'action="/feeds/{feed_id}/enable"' in page
    assert post(admin, f"/feeds/{feed_id}/poll").status_code == 404  # disabled: not polled
    assert post(admin, f"/feeds/{feed_id}/enable").status_code == 303
    assert feeds_in(db_url)[0][4] is True
    assert actions(db_url)[-3:] == ["feed.poll_now", "feed.disable", "feed.enable"]
    assert post(admin, "/feeds/999/disable").status_code == 404


def test_an_analyst_sees_feed_health_but_may_not_change_feeds(db_url: str) -> None:
    feed_id = add_feed(
        db_url, "a", titled=False, next_poll_at=datetime.now(UTC) + timedelta(hours=1)
    )
    with make_client(db_url) as client:
        add_user(db_url, ANA, "analyst")
        log_in(client, ANA)
        page = client.get("/feeds")
        assert page.status_code == 200 and "https://a.example/rss" in page.text
        assert 'action="/feeds/import"' not in page.text and "Poll now" not in page.text
        for path in (
            "/feeds",
            "/feeds/import",
            f"/feeds/{feed_id}/poll",
            f"/feeds/{feed_id}/disable",
        ):
            assert post(client, path, url="https://b.example/rss").status_code == 403, path
        assert client.get("/feeds/export.opml").status_code == 403
    assert feeds_in(db_url) == [("https://a.example/rss", "media", None, [], True)]


def test_the_api_adds_polls_disables_enables_and_exports_feeds(db_url: str) -> None:
    add_user(db_url, BOSS, "admin")
    add_user(db_url, ANA, "analyst")
    _, boss = add_token(db_url, BOSS, "admin")
    _, ana = add_token(db_url, ANA, "analyst")
    with make_client(db_url) as client:
        headers = {"authorization": f"Bearer {boss}"}
        body = {"url": "https://a.example/rss", "kind": "official", "tags": ["Defence"]}
        added = client.post("/api/v1/feeds", json=body, headers=headers)
        assert added.status_code == 201, added.text
        feed = added.json()
        assert (feed["kind"], feed["tags"]) == ("official", ["defence"])
        assert client.post("/api/v1/feeds", json=body, headers=headers).status_code == 200
        bad = client.post("/api/v1/feeds", json={"url": "file:///etc/passwd"}, headers=headers)
        assert bad.status_code == 422 and "http://" in bad.json()["detail"]
        for action, enabled in (("disable", False), ("enable", True), ("poll", True)):
            done = client.post(f"/api/v1/feeds/{feed['id']}/{action}", headers=headers)
            assert done.status_code == 200 and done.json()["enabled"] is enabled, action
        exported = client.get("/api/v1/feeds/export.opml", headers=headers)
        assert exported.status_code == 200 and 'xmlUrl="https://a.example/rss"' in exported.text
        weak = {"authorization": f"Bearer {ana}"}
        assert client.post("/api/v1/feeds", json=body, headers=weak).status_code == 403
        assert client.post(f"/api/v1/feeds/{feed['id']}/disable", headers=weak).status_code == 403
    assert actions(db_url) == ["feed.add", "feed.disable", "feed.enable", "feed.poll_now"]
