"""The Items pages on a real PostgreSQL: search stemmed in each item's language, filters,
pages, highlighted excerpts, item detail, inert hostile markup and roles."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.factories import (
    T0,
    add_classification,
    add_feed,
    add_item,
    add_pair,
    add_story,
    add_user,
    csrf_token,
    logged_in,
)
from tracker.config import Settings
from tracker.storage import api_tokens, labels, users
from tracker.usecases import accounts
from tracker.web.app import create_app
from tracker.web.item_views import PAGE_SIZE

pytestmark = pytest.mark.integration

HIT = re.compile(r'<li class="hit" id="item-(\d+)">')


@dataclass
class Web:
    app: FastAPI
    conn: psycopg.Connection

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def session(self, role: str) -> TestClient:
        """A new client logged in as <role>@newsroom.example (added the first time)."""
        email = f"{role}@newsroom.example"
        add_user(self.conn, email, role, exist_ok=True)
        return logged_in(self.client(), email)


@pytest.fixture
def web(conn: psycopg.Connection, db_url: str) -> Iterator[Web]:
    app = create_app(Settings(database_url=SecretStr(db_url), secret_key=SecretStr("x" * 40)))
    with TestClient(app):
        yield Web(app, conn)


def classify(conn: psycopg.Connection, item_id: int, label: str, version: str = "m1") -> None:
    add_classification(conn, item_id, label, 0.8, model_version=version)


def hits(client: TestClient, **params: Any) -> list[int]:
    response = client.get("/items", params=params)
    assert response.status_code == 200, response.text
    return [int(i) for i in HIT.findall(response.text)]


# --- search per language ----------------------------------------------------------------------


def test_an_english_search_for_ministries_finds_the_ministry(web: Web) -> None:
    feed = add_feed(web.conn, "courier")
    ministry = add_item(web.conn, feed, "The Ministry denies the report", "A statement.")
    add_item(web.conn, feed, "Weather for the weekend", "Sunny.")
    client = web.session("viewer")
    assert hits(client, q="ministries") == [ministry]
    assert hits(client, q="MINISTRIES", language="en") == [ministry]
    # The API's search reads the same stemmed words.
    token = accounts.new_api_token()
    user = users.get_by_email(web.conn, "viewer@newsroom.example")
    assert user is not None
    api_tokens.create(web.conn, user.id, "test", "viewer", accounts.token_digest(token))
    found = web.client().get(
        "/api/v1/items", params={"q": "ministries"}, headers={"authorization": f"Bearer {token}"}
    )
    assert [i["id"] for i in found.json()["items"]] == [ministry]


def test_a_romanian_search_finds_another_inflection_of_the_word(web: Web) -> None:
    feed = add_feed(web.conn, "ziar")
    ro = add_item(
        web.conn,
        feed,
        "Ministerul Apărării dezminte informațiile",
        "Avioanele românești nu zboară peste Ucraina.",
        language="ro",
    )
    en = add_item(web.conn, feed, "Information about jets", "Nothing here.")
    client = web.session("viewer")
    # "informației" (genitive singular) is not a word of the text; its stem is.
    assert hits(client, q="informației") == [ro]
    assert hits(client, q="informației", language="ro") == [ro]
    assert hits(client, q="informației", language="en") == []
    assert hits(client, q="information") == [en]


def test_ukrainian_is_searched_with_the_simple_configuration(web: Web) -> None:
    feed = add_feed(web.conn, "kyiv")
    uk = add_item(
        web.conn, feed, "Міністерство оборони спростовує", "Інформація про літаки", language="uk"
    )
    config = web.conn.execute("SELECT item_search_config('uk')::text").fetchone()
    assert config == ("simple",)
    client = web.session("viewer")
    assert hits(client, q="ОБОРОНИ") == [uk]
    assert hits(client, q="оборони", language="uk") == [uk]
    # No stemming for Ukrainian: another case of the word is another word.
    assert hits(client, q="оборона") == []


def test_matched_words_are_highlighted_in_the_title_and_the_excerpt(web: Web) -> None:
    feed = add_feed(web.conn, "courier")
    add_item(web.conn, feed, "Ministry denies report", "The ministries of defence said no.")
    page = web.session("viewer").get("/items", params={"q": "ministry"}).text
    assert "<mark>Ministry</mark> denies report" in page
    assert "The <mark>ministries</mark> of defence" in page


def test_by_rank_a_title_match_comes_before_a_summary_match_and_by_recency_newest_first(
    web: Web,
) -> None:
    feed = add_feed(web.conn, "courier")
    older_title = add_item(web.conn, feed, "Ministry statement", "Text.", seen_at=T0)
    newer_summary = add_item(
        web.conn, feed, "Statement", "From the ministry.", seen_at=T0 + timedelta(days=1)
    )
    client = web.session("viewer")
    assert hits(client, q="ministry") == [older_title, newer_summary]  # rank is the default
    assert hits(client, q="ministry", sort="recent") == [newer_summary, older_title]


# --- filters and pages ------------------------------------------------------------------------


def test_filters_select_by_language_feed_kind_label_and_date_range(web: Web) -> None:
    c = web.conn
    media, official = add_feed(c, "courier"), add_feed(c, "ministry", "official")
    en_rumour = add_item(c, media, "Jets over the border", seen_at=T0)
    ro_official = add_item(c, official, "Avioane la graniță", language="ro-RO", seen_at=T0)
    later = add_item(c, media, "Jets again", seen_at=T0 + timedelta(days=3))
    classify(c, en_rumour, "rumour")
    classify(c, ro_official, "clarification")
    classify(c, later, "other")
    client = web.session("viewer")
    assert hits(client, language="ro") == [ro_official]
    assert hits(client, kind="official") == [ro_official]
    assert hits(client, label="rumour") == [en_rumour]
    day = T0.date()
    assert sorted(hits(client, **{"from": day.isoformat(), "to": day.isoformat()})) == [
        en_rumour,
        ro_official,
    ]
    assert hits(client, **{"from": (day + timedelta(days=1)).isoformat()}) == [later]
    assert hits(client, q="jets", kind="media", label="other") == [later]


def test_bad_filters_get_a_message_and_the_rest_of_the_search_still_runs(web: Web) -> None:
    feed = add_feed(web.conn, "courier")
    item = add_item(web.conn, feed, "Ministry statement")
    client = web.session("viewer")
    response = client.get(
        "/items",
        params={"q": "ministry", "kind": "tabloid", "from": "yesterday", "page": "0", "sort": "x"},
    )
    assert response.status_code == 200
    assert "is not a feed kind" in response.text
    assert "from must be a date" in response.text
    assert "page must be a whole number" in response.text
    assert "Unknown order" in response.text
    assert [int(i) for i in HIT.findall(response.text)] == [item]
    # Web-search syntax never errors, whatever the punctuation.
    assert client.get("/items", params={"q": "\"' & | ! ( :* <->"}).status_code == 200


def test_pages_cover_every_item_once_and_link_to_each_other(web: Web) -> None:
    feed = add_feed(web.conn, "courier")
    ids = [
        add_item(web.conn, feed, f"Ministry note {n}", seen_at=T0 + timedelta(minutes=n // 3))
        for n in range(PAGE_SIZE + 7)
    ]
    client = web.session("viewer")
    first = client.get("/items", params={"q": "ministry", "sort": "recent"}).text
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = client.get("/items", params={"q": "ministry", "sort": "recent", "page": 2}).text
    assert 'rel="next"' not in second and 'rel="prev"' in second
    shown = [int(i) for page in (first, second) for i in HIT.findall(page)]
    # Newest first; among items of the same minute, the higher id first.
    assert shown == sorted(ids, key=lambda i: (ids.index(i) // 3, i), reverse=True)
    assert "q=ministry" in re.findall(r'href="([^"]+)" rel="next"', first)[0]
    total = PAGE_SIZE + 7
    assert f"{total} items match; showing 1 to {PAGE_SIZE}." in first
    assert f"{total} items match; showing {PAGE_SIZE + 1} to {total}." in second
    nothing = client.get("/items", params={"q": "zeppelin"}).text
    assert "No items match." in nothing and "Page 1" not in nothing and "showing" not in nothing


def test_a_story_link_lists_the_storys_items(web: Web) -> None:
    c = web.conn
    feed = add_feed(c, "courier")
    story = add_story(c, "Jets", T0)
    inside = add_item(c, feed, "Jets seen", story_id=story)
    add_item(c, feed, "Jets not in it")
    assert hits(web.session("viewer"), story=story) == [inside]


# --- item detail ------------------------------------------------------------------------------


def test_an_item_page_shows_history_labels_story_pairs_and_the_relabel_form(web: Web) -> None:
    c = web.conn
    media, official = add_feed(c, "courier"), add_feed(c, "ministry", "official")
    story = add_story(c, "Secret jets", T0)
    rumour = add_item(c, media, "Secret jets", url="https://courier.example/jets", story_id=story)
    clarification = add_item(c, official, "The ministry clarifies")
    classify(c, rumour, "other", "m1")
    classify(c, rumour, "rumour", "m2")
    analyst = add_user(c, "ana@newsroom.example", "analyst")
    labels.add_item_label(c, rumour, "rumour", analyst)
    add_pair(c, rumour, clarification, 0.87, created_at=None, terms=None)
    client = web.session("analyst")
    page = client.get(f"/items/{rumour}").text
    assert '<a href="https://courier.example/jets" rel="noopener noreferrer"' in page
    assert re.search(r"<td>m1</td><td>other</td><td>0.80</td>", page)
    assert re.search(r"<td>m2</td><td>rumour</td><td>0.80</td>", page)
    assert "<td>rumour</td><td>ana@newsroom.example</td>" in page
    story_links = f'<a href="/stories/{story}">Secret jets</a> (<a href="/items?story={story}">'
    assert story_links + "its items</a>)" in page
    assert f'<a href="/items/{clarification}">The ministry clarifies</a>' in page
    assert "0.87" in page
    assert f'action="/items/{rumour}/label"' in page
    # The form works as it stands: its CSRF token and its way back.
    form = {"csrf_token": csrf_token(client, f"/items/{rumour}"), "label": "other"}
    form["back"] = f"/items/{rumour}"
    answer = client.post(f"/items/{rumour}/label", data=form, headers={"accept": "text/html"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/items/{rumour}"
    assert "<td>other</td><td>analyst@newsroom.example</td>" in client.get(f"/items/{rumour}").text
    other_side = client.get(f"/items/{clarification}").text
    assert f'<a href="/items/{rumour}">Secret jets</a>' in other_side


def test_a_summary_the_content_opens_with_is_shown_once(web: Web) -> None:
    feed = add_feed(web.conn, "Courier")
    summary = "The ministry denies that F-16s fly missions over Ukraine."
    echoed = add_item(
        web.conn, feed, "F-16s", summary, content_html=f"<p>{summary}</p><p>More text.</p>"
    )
    apart = add_item(web.conn, feed, "F-16s again", summary, content_html="<p>Other text.</p>")
    client = web.session("viewer")
    assert client.get(f"/items/{echoed}").text.count(summary) == 1
    assert client.get(f"/items/{apart}").text.count(summary) == 1
    assert "Other text." in client.get(f"/items/{apart}").text


def test_a_missing_item_is_a_404_page(web: Web) -> None:
    client = web.session("viewer")
    assert client.get("/items/999999").status_code == 404
    assert client.get("/items/0").status_code == 422


# --- hostile text -----------------------------------------------------------------------------


XSS_TITLE = '<script>alert("t")</script> Ministry <img src=x onerror=alert(1)>'
XSS_SUMMARY = "</p><svg onload=alert(2)> ministry \ue000fake\ue001 <b>bold</b>"
XSS_CONTENT = (
    '<p>Kept <a href="javascript:alert(3)">link</a></p><script>alert(4)</script>'
    '<img src="https://x.example/a.png" onerror="alert(5)"><iframe src="https://x.example">'
)


class Elements(HTMLParser):
    """Every element a browser would build from the page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def assert_inert(page: str) -> None:
    parser = Elements()
    parser.feed(page)
    tags = {tag for tag, _ in parser.found}
    assert not tags & {"script", "svg", "iframe"}, tags
    for tag, attrs in parser.found:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src"):
            assert not (attrs.get(name) or "").lower().startswith("javascript:"), (tag, attrs)


def test_hostile_markup_in_title_summary_and_content_is_inert_on_both_pages(web: Web) -> None:
    feed = add_feed(web.conn, "courier")
    item = add_item(
        web.conn,
        feed,
        XSS_TITLE,
        XSS_SUMMARY,
        content_html=XSS_CONTENT,
        url="javascript:alert(6)",
    )
    client = web.session("viewer")
    search = client.get("/items", params={"q": "ministry"}).text
    assert [int(i) for i in HIT.findall(search)] == [item]
    assert_inert(search)
    assert "&lt;script&gt;" in search and "<mark>Ministry</mark>" in search
    # A feed's own use of our mark characters does not make markup.
    assert "<mark>fake</mark>" not in search
    detail = client.get(f"/items/{item}").text
    assert_inert(detail)
    assert "&lt;script&gt;alert" in detail  # the title, as text
    assert "<p>Kept <a" in detail  # sanitised content is rendered as markup
    assert 'rel="noopener noreferrer nofollow"' in detail
    assert "Original article" not in detail  # no link for a javascript: URL


# --- roles ------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in_and_viewers_get_no_relabel_form(web: Web) -> None:
    feed = add_feed(web.conn, "courier")
    item = add_item(web.conn, feed, "Ministry statement")
    anonymous = web.client()
    for path in ("/items", f"/items/{item}"):
        response = anonymous.get(path, headers={"accept": "text/html"})
        assert response.status_code in (302, 303), path
        assert response.headers["location"].startswith("/login")
    viewer = web.session("viewer")
    page = viewer.get(f"/items/{item}").text
    assert "Ministry statement" in page
    assert f'action="/items/{item}/label"' not in page
    form = {"csrf_token": csrf_token(viewer, "/items"), "label": "rumour"}
    assert viewer.post(f"/items/{item}/label", data=form).status_code == 403
    assert labels_of(web.conn, item) == []


def labels_of(conn: psycopg.Connection, item_id: int) -> list[str]:
    found = conn.execute("SELECT label FROM item_labels WHERE item_id = %s", (item_id,))
    return [row[0] for row in found.fetchall()]
