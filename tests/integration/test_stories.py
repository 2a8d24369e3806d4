"""The story page and merging and splitting stories, by form and by API, on a real PostgreSQL."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.factories import (
    add_feed,
    add_item,
    add_pair,
    add_review,
    add_story,
    add_subscription,
    add_user,
    csrf_token,
    logged_in,
)
from tracker.config import Settings
from tracker.storage import api_tokens
from tracker.usecases import accounts
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

ITEM_ROW = re.compile(r'<tr class="story-item" id="item-(\d+)">')
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@dataclass
class Web:
    app: FastAPI
    db_url: str

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def session(self, email: str, role: str) -> TestClient:
        """A new client logged in as a new user of that role."""
        add_user(self.db_url, email, role)
        return logged_in(self.client(), email)

    def one(self, statement: str, *params: Any) -> Any:
        rows = self.rows(statement, *params)
        assert len(rows) == 1, rows
        return rows[0][0]

    def rows(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(statement, params).fetchall()


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    settings = Settings(database_url=SecretStr(db_url), secret_key=SecretStr("x" * 40))
    app = create_app(settings)
    with TestClient(app):
        yield Web(app, db_url)


def api_token(web: Web, email: str, role: str) -> dict[str, str]:
    user_id = add_user(web.db_url, email, role)
    secret = accounts.new_api_token()
    with psycopg.connect(web.db_url) as conn:
        api_tokens.create(conn, user_id, "test", role, accounts.token_digest(secret))
    return {"authorization": f"Bearer {secret}"}


def post(client: TestClient, path: str, form: dict[str, Any]) -> httpx.Response:
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **form})


def follow(web: Web, email: str, story_id: int) -> int:
    return add_subscription(web.db_url, email, "story", story_id=story_id)


def story_items(web: Web, story_id: int) -> list[int]:
    return [
        r[0] for r in web.rows("SELECT id FROM items WHERE story_id = %s ORDER BY id", story_id)
    ]


@dataclass(frozen=True)
class World:
    """Story A (three outlets over three days, a clarification, a decision) and story B."""

    a: int
    b: int
    a_items: list[int]
    b_items: list[int]
    clarification: int
    pair: int


def world(web: Web) -> World:
    db = web.db_url
    courier, herald, gazette = (add_feed(db, name) for name in ("Courier", "Herald", "Gazette"))
    ministry = add_feed(db, "Ministry", "official")
    a = add_story(db, "F-16s fly secret missions", T0)
    b = add_story(db, "F-16 missions, again", T0)
    a_items = [
        add_item(
            db,
            courier,
            "F-16s fly secret missions",
            "",
            "en",
            T0,
            story_id=a,
            url="https://courier.example/f16",
        ),
        add_item(db, herald, "Secret F-16 missions", "", "ro", T0 + timedelta(days=1), story_id=a),
        add_item(
            db, gazette, "F-16 missions revealed", "", "en", T0 + timedelta(days=2), story_id=a
        ),
    ]
    b_items = [
        add_item(db, herald, "F-16 missions, again", "", "en", T0 + timedelta(days=3), story_id=b)
    ]
    clarification = add_item(
        db, ministry, "Ministry: no F-16 missions", "", "en", T0 + timedelta(days=1)
    )
    pair_id = add_pair(db, a_items[0], clarification, 0.91, "confirmed", created_at=None)
    user_id = add_user(web.db_url, "rev@newsroom.example", "analyst")
    add_review(
        db, pair_id, "confirm", user_id=user_id, reason="same claim", previous_status="suggested"
    )
    return World(a, b, a_items, b_items, clarification, pair_id)


# --- the page --------------------------------------------------------------------------------


def test_the_story_page_charts_the_spread_and_lists_items_clarifications_and_decisions(
    web: Web,
) -> None:
    w = world(web)
    page = web.session("vic@newsroom.example", "viewer").get(f"/stories/{w.a}")
    assert page.status_code == 200, page.text
    html = page.text
    assert '<svg class="spread-chart"' in html and 'role="img"' in html
    assert f'<title id="spread-title">Spread of story {w.a}' in html
    assert "3 items in 3 outlets, 2026-11-28 to 2026-11-30 (UTC)." in html
    assert html.count('<rect class="bar"') == 3, "one bar per day"
    assert "2026-11-29: 1 item</title>" in html
    assert "Date (UTC)" in html and ">Count<" in html
    assert [int(i) for i in ITEM_ROW.findall(html)] == sorted(w.a_items, reverse=True)
    assert '<a href="https://courier.example/f16" rel="noopener noreferrer">' in html
    assert "<td>Herald</td>" in html and "<td>ro</td>" in html and "<td>media</td>" in html
    assert "Ministry: no F-16 missions" in html
    assert '<span class="status status-confirmed">confirmed</span>' in html
    assert "rev@newsroom.example" in html and "same claim" in html
    assert "F-16 missions, again" not in html, "story B's item is not on A's page"
    assert "/split" not in html and "/merge" not in html, "a viewer gets no forms"


def test_the_outlets_line_climbs_as_each_new_outlet_picks_the_story_up(web: Web) -> None:
    w = world(web)
    html = web.session("vic@newsroom.example", "viewer").get(f"/stories/{w.a}").text
    points = re.search(r'<polyline class="outlets-line" points="([^"]+)"', html)
    assert points
    heights = [float(p.split(",")[1]) for p in points.group(1).split()]
    # Two points per day (a step); SVG y grows downwards, so more outlets is a smaller y.
    assert heights[0] == heights[1] > heights[2] == heights[3] > heights[4] == heights[5]


def test_feed_text_on_the_story_page_is_inert(web: Web) -> None:
    courier = add_feed(web.db_url, '<img src=x onerror="alert(1)">')
    a = add_story(web.db_url, "<script>alert('story')</script>", T0)
    add_item(
        web.db_url,
        courier,
        "<script>alert('item')</script>",
        "",
        "en",
        T0,
        story_id=a,
        url="javascript:alert(2)",
    )
    html = web.session("vic@newsroom.example", "viewer").get(f"/stories/{a}").text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;item&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "javascript:" not in html


def test_an_unknown_story_is_a_404_page(web: Web) -> None:
    response = web.session("vic@newsroom.example", "viewer").get("/stories/999")
    assert response.status_code == 404
    assert "There is no such story" in response.text


def test_each_queue_card_of_a_story_links_to_its_page(web: Web) -> None:
    w = world(web)
    add_pair(web.db_url, w.a_items[1], w.clarification, 0.7, created_at=None)
    html = web.session("ana@newsroom.example", "analyst").get("/").text
    assert f'<a class="story-link" href="/stories/{w.a}">' in html


# --- merge -----------------------------------------------------------------------------------


def test_merging_moves_items_pairs_and_followers_and_removes_the_merged_story(web: Web) -> None:
    w = world(web)
    checker = add_feed(web.db_url, "Checker", "factcheck")
    fake = add_item(web.db_url, checker, "Fake", "", "en", T0)
    b_pair = add_pair(web.db_url, w.b_items[0], fake, 0.6, created_at=None)
    kept = follow(web, "both@newsroom.example", w.a)
    duplicate = follow(web, "both@newsroom.example", w.b)
    moved = follow(web, "b-only@newsroom.example", w.b)
    analyst = web.session("ana@newsroom.example", "analyst")
    page = analyst.get(f"/stories/{w.a}").text
    assert f'action="/stories/{w.a}/merge"' in page and 'name="source"' in page
    response = post(analyst, f"/stories/{w.a}/merge", {"source": str(w.b)})
    assert response.status_code == 303
    assert response.headers["location"] == f"/stories/{w.a}"
    assert story_items(web, w.a) == sorted(w.a_items + w.b_items)
    assert web.rows("SELECT id FROM stories WHERE id = %s", w.b) == []
    assert analyst.get(f"/stories/{w.b}").status_code == 404
    followers = web.rows(
        "SELECT id, email FROM alert_subscriptions WHERE story_id = %s ORDER BY id", w.a
    )
    assert followers == [(kept, "both@newsroom.example"), (moved, "b-only@newsroom.example")]
    assert web.rows("SELECT id FROM alert_subscriptions WHERE id = %s", duplicate) == []
    # B's own pair still stands; A's clarification is now suggested for B's rumour too.
    assert web.one("SELECT rumour_id FROM pairs WHERE id = %s", b_pair) == w.b_items[0]
    spread = web.one(
        "SELECT status FROM pairs WHERE rumour_id = %s AND clarification_id = %s",
        w.b_items[0],
        w.clarification,
    )
    assert spread == "suggested"
    actor, target, details = web.rows(
        "SELECT actor, target, details FROM audit_log WHERE action = 'story.merge'"
    )[0]
    assert (actor, target) == ("ana@newsroom.example", f"story:{w.a}")
    assert details["merged"] == w.b and details["items"] == w.b_items and details["via"] == "web"
    assert "F-16 missions, again" in analyst.get(f"/stories/{w.a}").text


def test_merging_keeps_the_earliest_first_seen_time(web: Web) -> None:
    w = world(web)
    web.rows(
        "UPDATE stories SET first_seen_at = %s WHERE id = %s RETURNING id",
        T0 - timedelta(days=5),
        w.b,
    )
    analyst = web.session("ana@newsroom.example", "analyst")
    assert post(analyst, f"/stories/{w.a}/merge", {"source": str(w.b)}).status_code == 303
    assert web.one("SELECT first_seen_at FROM stories WHERE id = %s", w.a) == T0 - timedelta(days=5)


@pytest.mark.parametrize(
    ("source", "status", "message"),
    [
        ("self", 400, "A story cannot be merged into itself."),
        ("999", 404, "There is no story 999."),
        ("abc", 400, "Give the number of the story to merge into this one."),
        ("", 400, "Give the number of the story to merge into this one."),
    ],
)
def test_a_merge_that_cannot_be_done_is_refused_with_a_reason_and_changes_nothing(
    web: Web, source: str, status: int, message: str
) -> None:
    w = world(web)
    analyst = web.session("ana@newsroom.example", "analyst")
    form = {"source": str(w.a) if source == "self" else source}
    response = post(analyst, f"/stories/{w.a}/merge", form)
    assert response.status_code == status
    assert message in response.text
    assert story_items(web, w.a) == w.a_items and story_items(web, w.b) == w.b_items
    assert web.rows("SELECT id FROM audit_log WHERE action LIKE 'story.%%'") == []


def test_a_script_posting_the_forms_gets_json_refusals_and_no_notice_left_behind(
    web: Web,
) -> None:
    w = world(web)
    analyst = web.session("ana@newsroom.example", "analyst")
    token = csrf_token(analyst, "/")
    as_json = {"Accept": "application/json"}
    refused = analyst.post(
        f"/stories/{w.a}/merge", data={"csrf_token": token, "source": "x"}, headers=as_json
    )
    assert refused.status_code == 400
    assert refused.json() == {"detail": "Give the number of the story to merge into this one."}
    merged = analyst.post(
        f"/stories/{w.a}/merge",
        data={"csrf_token": token, "source": str(w.b)},
        headers=as_json,
        follow_redirects=False,
    )
    assert merged.status_code == 303
    assert "merged into story" not in analyst.get(f"/stories/{w.a}").text


def test_merging_into_an_unknown_story_is_a_404(web: Web) -> None:
    w = world(web)
    analyst = web.session("ana@newsroom.example", "analyst")
    response = post(analyst, "/stories/999/merge", {"source": str(w.b)})
    assert response.status_code == 404
    assert story_items(web, w.b) == w.b_items


# --- split -----------------------------------------------------------------------------------


def test_splitting_moves_the_ticked_items_into_a_new_story_that_followers_follow_too(
    web: Web,
) -> None:
    w = world(web)
    follower = follow(web, "fan@newsroom.example", w.a)
    analyst = web.session("ana@newsroom.example", "analyst")
    page = analyst.get(f"/stories/{w.a}").text
    assert f'action="/stories/{w.a}/split"' in page
    assert f'name="item_id" value="{w.a_items[0]}"' in page
    moving = [w.a_items[0], w.a_items[2]]
    response = post(analyst, f"/stories/{w.a}/split", {"item_id": [str(i) for i in moving]})
    assert response.status_code == 303
    new = int(response.headers["location"].removeprefix("/stories/"))
    assert new not in (w.a, w.b)
    assert story_items(web, new) == moving
    assert story_items(web, w.a) == [w.a_items[1]]
    title, first_seen = web.rows("SELECT title, first_seen_at FROM stories WHERE id = %s", new)[0]
    assert (title, first_seen) == ("F-16s fly secret missions", T0)
    assert web.one("SELECT first_seen_at FROM stories WHERE id = %s", w.a) == T0 + timedelta(days=1)
    followers = web.rows(
        "SELECT id, story_id FROM alert_subscriptions WHERE email = %s ORDER BY id",
        "fan@newsroom.example",
    )
    assert followers[0] == (follower, w.a) and [f[1] for f in followers] == [w.a, new]
    details = web.one(
        "SELECT details FROM audit_log WHERE action = 'story.split' AND target = %s", f"story:{w.a}"
    )
    assert details == {"new_story": new, "items": moving, "via": "web"}
    html = analyst.get(f"/stories/{new}").text
    assert [int(i) for i in ITEM_ROW.findall(html)] == sorted(moving, reverse=True)
    # The confirmed pair went with its rumour, so its decision shows on the new story's page.
    assert "same claim" in html


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ("none", "Tick the items to move into a new story."),
        ("all", "A split must leave at least one item in this story."),
        ("other", "Not items of this story: "),
        ("junk", "Give the number of an item."),
    ],
)
def test_a_split_that_cannot_be_done_is_refused_with_a_reason_and_changes_nothing(
    web: Web, choice: str, message: str
) -> None:
    w = world(web)
    chosen = {
        "none": [],
        "all": [str(i) for i in w.a_items],
        "other": [str(w.a_items[0]), str(w.b_items[0])],
        "junk": ["1; DROP TABLE items"],
    }[choice]
    analyst = web.session("ana@newsroom.example", "analyst")
    response = post(analyst, f"/stories/{w.a}/split", {"item_id": chosen})
    assert response.status_code == 400
    assert message in response.text
    assert story_items(web, w.a) == w.a_items and story_items(web, w.b) == w.b_items
    assert web.one("SELECT count(*) FROM stories") == 2


# --- roles, CSRF -----------------------------------------------------------------------------


def test_a_viewer_may_read_the_story_but_not_merge_or_split_it(web: Web) -> None:
    w = world(web)
    viewer = web.session("vic@newsroom.example", "viewer")
    assert viewer.get(f"/stories/{w.a}").status_code == 200
    merge = post(viewer, f"/stories/{w.a}/merge", {"source": str(w.b)})
    split = post(viewer, f"/stories/{w.a}/split", {"item_id": [str(w.a_items[0])]})
    assert (merge.status_code, split.status_code) == (403, 403)
    assert story_items(web, w.a) == w.a_items and story_items(web, w.b) == w.b_items


def test_a_merge_without_the_csrf_token_is_refused(web: Web) -> None:
    w = world(web)
    analyst = web.session("ana@newsroom.example", "analyst")
    response = analyst.post(f"/stories/{w.a}/merge", data={"source": str(w.b)})
    assert response.status_code == 403
    assert story_items(web, w.b) == w.b_items


# --- API -------------------------------------------------------------------------------------


def test_the_api_merges_and_splits_with_an_analyst_token(web: Web) -> None:
    w = world(web)
    headers = api_token(web, "bot@newsroom.example", "analyst")
    client = web.client()
    merged = client.post(f"/api/v1/stories/{w.a}/merge", json={"source_id": w.b}, headers=headers)
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["id"] == w.a
    assert [(d["pair_id"], d["decision"], d["reason"]) for d in body["decisions"]] == [
        (w.pair, "confirm", "same claim")
    ]
    assert sorted(i["id"] for i in body["items"]) == sorted(w.a_items + w.b_items)
    split = client.post(
        f"/api/v1/stories/{w.a}/split", json={"item_ids": w.b_items}, headers=headers
    )
    assert split.status_code == 200, split.text
    new = split.json()
    assert [i["id"] for i in new["items"]] == w.b_items and new["title"] == "F-16 missions, again"
    assert story_items(web, w.a) == w.a_items
    vias = web.rows("SELECT action, details->>'via' FROM audit_log ORDER BY id")
    assert vias == [("story.merge", "api"), ("story.split", "api")]


def test_the_api_refuses_bad_merges_and_splits_with_json_errors(web: Web) -> None:
    w = world(web)
    analyst = api_token(web, "bot@newsroom.example", "analyst")
    viewer = api_token(web, "eye@newsroom.example", "viewer")
    client = web.client()

    def send(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        response = client.post(f"/api/v1/stories/{path}", json=body, headers=headers)
        return response.status_code, response.json()["detail"]

    assert send(f"{w.a}/merge", {"source_id": w.a}, analyst) == (
        400,
        "A story cannot be merged into itself.",
    )
    assert send(f"{w.a}/merge", {"source_id": 999}, analyst) == (404, "There is no story 999.")
    assert send(f"{w.a}/split", {"item_ids": w.a_items}, analyst)[0] == 400
    assert send(f"{w.a}/split", {"item_ids": []}, analyst)[0] == 422
    assert send(f"{w.a}/merge", {"source_id": w.b}, viewer)[0] == 403
    assert story_items(web, w.a) == w.a_items and story_items(web, w.b) == w.b_items


def test_merge_and_split_are_in_the_openapi_document(web: Web) -> None:
    headers = api_token(web, "bot@newsroom.example", "viewer")
    paths = web.client().get("/api/openapi.json", headers=headers).json()["paths"]
    for action in ("merge", "split"):
        operation = paths[f"/api/v1/stories/{{story_id}}/{action}"]["post"]
        assert operation["description"] and "requestBody" in operation
        assert {"200", "400", "404"} <= set(operation["responses"])
