"""Feed URLs with credentials: masked for everyone on pages, in the API, the exports, the CLI
and the logs; whole on an admin's edit form only. Feeds at addresses the fetch would refuse are
refused when added."""

import json
from collections.abc import Iterator

import psycopg
import pytest
import structlog
from fastapi.testclient import TestClient

from tests.conftest import run_tracker
from tests.factories import add_feed, add_item, add_pair, add_user, csrf_token, log_in
from tests.integration.test_access import add_token
from tests.integration.test_feed_pages import BOSS, ERROR, make_client, post, text_of
from tests.integration.test_web import query
from tracker import logs

pytestmark = pytest.mark.integration

PASSWORD = "hunter2-pass"
KEY = "K3y-5ecret-77"
PRIVATE = f"https://reader:{PASSWORD}@news.example/rss.xml?api_key={KEY}&lang=ro"
MASKED = "https://reader:***@news.example/rss.xml?api_key=***&lang=ro"
VIEWER = "vic@newsroom.example"


def leaks(text: str) -> bool:
    return PASSWORD in text or KEY in text


@pytest.fixture
def private_feed(db_url: str) -> int:
    """An untitled feed with a key and a password in its URL, failing with an error that
    repeats the URL, and a confirmed pair of its items (so its name reaches the exports)."""
    with psycopg.connect(db_url) as conn:
        feed = add_feed(
            conn,
            "news",
            url=PRIVATE,
            host="news.example",
            titled=False,
            last_error=f"HTTP 401 from {PRIVATE}",
            error_count=3,
        )
        rumour, answer = (
            add_item(conn, feed, title, language=None, seen_at=None, dedupe_key=key)
            for key, title in (("r", "F-16s over Ukraine"), ("c", "The F-16 report is false"))
        )
        add_pair(conn, rumour, answer, 0.9, "confirmed", created_at=None)
        return feed


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with make_client(db_url) as test_client:
        yield test_client


def test_a_viewer_sees_no_key_or_password_on_pages_in_the_api_or_the_exports(
    client: TestClient, db_url: str, private_feed: int
) -> None:
    add_user(db_url, VIEWER, "viewer")
    log_in(client, VIEWER)
    feeds_page = client.get("/feeds").text
    assert MASKED.replace("&", "&amp;") in feeds_page and not leaks(feeds_page)
    for path in ("/pairs?status=confirmed", "/items", "/items/1", "/stories"):
        page = client.get(path)
        assert not leaks(page.text), path
    token = add_token(db_url, VIEWER, "viewer")[1]
    headers = {"authorization": f"Bearer {token}"}
    [listed] = client.get("/api/v1/feeds", headers=headers).json()
    assert listed["url"] == MASKED
    assert listed["last_error"] == f"HTTP 401 from {MASKED}"
    for export in ("/api/v1/export/pairs.csv", "/api/v1/export/pairs.jsonl"):
        body = client.get(export, headers=headers).text
        assert "news.example" in body and not leaks(body), export
    assert client.get(f"/feeds/{private_feed}/edit").status_code == 403


def test_an_admin_sees_the_whole_url_on_the_edit_form_only_and_can_rotate_the_key(
    client: TestClient, db_url: str, private_feed: int
) -> None:
    add_user(db_url, BOSS, "admin")
    log_in(client, BOSS)
    listing = client.get("/feeds").text
    assert not leaks(listing) and f'href="/feeds/{private_feed}/edit"' in listing
    token = add_token(db_url, BOSS, "admin")[1]
    api = client.get("/api/v1/feeds", headers={"authorization": f"Bearer {token}"}).text
    assert not leaks(api)

    form = client.get(f"/feeds/{private_feed}/edit").text
    assert f'value="{PRIVATE.replace("&", "&amp;")}"' in form

    rotated = PRIVATE.replace(KEY, "N3w-k3y-88")
    saved = post(client, f"/feeds/{private_feed}/edit", url=rotated, kind="official", title="Wire")
    assert saved.headers["location"] == "/feeds"
    assert query(db_url, "SELECT url, kind, title FROM feeds") == [(rotated, "official", "Wire")]
    [(details,)] = query(db_url, "SELECT details FROM audit_log WHERE action = 'feed.edit'")
    assert "N3w-k3y-88" not in json.dumps(details) and "api_key=***" in details["url"]


def test_an_edit_that_clashes_or_points_inside_is_refused_and_changes_nothing(
    client: TestClient, db_url: str, private_feed: int
) -> None:
    add_user(db_url, BOSS, "admin")
    log_in(client, BOSS)
    add_feed(db_url, "other", titled=False)
    taken = post(client, f"/feeds/{private_feed}/edit", url="https://other.example/rss")
    assert taken.status_code == 400
    assert "another feed already has this URL" in text_of(ERROR, taken.text)
    inside = post(client, f"/feeds/{private_feed}/edit", url="http://169.254.169.254/latest/")
    assert inside.status_code == 400
    assert "TRACKER_FETCH_ALLOW_NETWORKS" in text_of(ERROR, inside.text)
    assert query(db_url, "SELECT url FROM feeds WHERE id = %s", private_feed) == [(PRIVATE,)]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:5432/",
        "http://[::1]/feed.xml",
        "http://10.0.0.7/rss",
        "http://localhost:6379/",
    ],
)
def test_a_feed_at_an_address_the_fetch_refuses_is_refused_when_added(
    client: TestClient, db_url: str, url: str
) -> None:
    add_user(db_url, BOSS, "admin")
    log_in(client, BOSS)
    page = post(client, "/feeds", url=url, kind="media")
    assert page.status_code == 400
    assert "TRACKER_FETCH_ALLOW_NETWORKS" in text_of(ERROR, page.text)
    token = add_token(db_url, BOSS, "admin")[1]
    api = client.post(
        "/api/v1/feeds", json={"url": url}, headers={"authorization": f"Bearer {token}"}
    )
    assert api.status_code == 422 and "TRACKER_FETCH_ALLOW_NETWORKS" in api.json()["detail"]
    assert query(db_url, "SELECT count(*) FROM feeds") == [(0,)]


def test_the_allow_list_admits_an_address_and_opml_skips_refused_literals(
    db_url: str,
) -> None:
    add_user(db_url, BOSS, "admin")
    with make_client(db_url, fetch_allow_networks=["10.0.0.0/8"]) as client:
        log_in(client, BOSS)
        assert post(client, "/feeds", url="http://10.0.0.7/rss").status_code == 303
        opml = (
            b'<?xml version="1.0"?><opml version="2.0"><body>'
            b'<outline xmlUrl="http://169.254.169.254/x"/>'
            b'<outline xmlUrl="http://10.0.0.8/rss"/>'
            b'<outline xmlUrl="https://courier.example/rss"/></body></opml>'
        )
        token = csrf_token(client, "/feeds")
        upload = {"file": ("feeds.opml", opml, "text/x-opml")}
        page = client.post("/feeds/import", data={"csrf_token": token}, files=upload).text
        assert "2 added" in page and "169.254.169.254" in page
    urls = {row[0] for row in query(db_url, "SELECT url FROM feeds")}
    assert urls == {"http://10.0.0.7/rss", "http://10.0.0.8/rss", "https://courier.example/rss"}


def test_the_cli_lists_feeds_masked_and_refuses_a_private_address(
    cli_env: dict[str, str], db_url: str, private_feed: int
) -> None:
    listed = run_tracker("feeds", "list", env=cli_env)
    assert listed.returncode == 0 and MASKED in listed.stdout and not leaks(listed.stdout)
    as_json = run_tracker("feeds", "list", "--json", env=cli_env)
    assert json.loads(as_json.stdout)[0]["url"] == MASKED and not leaks(as_json.stdout)
    refused = run_tracker("feeds", "add", "http://169.254.169.254/latest/", env=cli_env)
    assert refused.returncode == 1
    assert "TRACKER_FETCH_ALLOW_NETWORKS" in refused.stderr


def test_a_logged_url_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    structlog.get_logger("t").info("feed moved permanently", old=PRIVATE, new=PRIVATE)
    err = capsys.readouterr().err
    assert MASKED in err and not leaks(err)
