"""The review queue on a real PostgreSQL: ranking, claims, decisions, undo, relabel, filters."""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.factories import add_queue_pair, add_user, csrf_token, logged_in
from tracker.config import Settings
from tracker.storage import labels, reviews
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

PAIR_ARTICLE = re.compile(r'<article class="pair[^"]*" id="pair-(\d+)"')


@dataclass
class Clock:
    moment: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class Web:
    db_url: str
    clock: Clock
    clients: list[TestClient]

    def client(self) -> TestClient:
        settings = Settings(database_url=SecretStr(self.db_url), secret_key=SecretStr("x" * 40))
        client = TestClient(create_app(settings, clock=self.clock), follow_redirects=False)
        client.__enter__()
        self.clients.append(client)
        return client


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    found = Web(db_url, Clock(), [])
    yield found
    for client in found.clients:
        client.__exit__(None, None, None)


def one(conn: psycopg.Connection, statement: str, *params: Any) -> Any:
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    return row[0]


def rows(db_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(statement, params).fetchall()


def shown_pairs(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [int(found) for found in PAIR_ARTICLE.findall(response.text)]


def post(client: TestClient, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **form})


def test_the_queue_ranks_by_score_then_recency_and_shows_spread_and_language(web: Web) -> None:
    add_user(web.db_url, "vic@newsroom.example", "viewer")
    old = datetime(2026, 11, 1, tzinfo=UTC)
    low = add_queue_pair(web.db_url, 0.40)
    high_old = add_queue_pair(web.db_url, 0.90, created_at=old, language="ro")
    high_new = add_queue_pair(web.db_url, 0.90)
    page = logged_in(web.client(), "vic@newsroom.example").get("/")
    assert shown_pairs(page) == [high_new, high_old, low]
    assert "Story seen in 2 outlets, first seen 2026-11-30 08:00 UTC" in page.text
    assert ">ro<" in page.text and ">en<" in page.text
    assert "<mark>troops</mark>" in page.text.lower()
    assert 'value="confirm"' not in page.text, "a viewer gets no buttons"


def test_shared_terms_are_highlighted_inside_escaped_item_text(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_queue_pair(
        web.db_url,
        0.8,
        rumour='<b onmouseover="x()">F-16</b> <script>alert(1)</script>',
        terms=("f-16", "<script>"),
    )
    page = logged_in(web.client(), "ana@newsroom.example").get("/").text
    assert "&lt;b onmouseover=&#34;x()&#34;&gt;<mark>F-16</mark>&lt;/b&gt;" in page
    assert "<mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt;" in page
    assert "<b " not in page and "<script>" not in page


def test_two_analysts_are_given_different_pairs_and_cannot_decide_each_others(web: Web) -> None:
    ana_id = add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_user(web.db_url, "bo@newsroom.example", "analyst")
    first = add_queue_pair(web.db_url, 0.9)
    second = add_queue_pair(web.db_url, 0.8)
    ana, bo = (
        logged_in(web.client(), "ana@newsroom.example"),
        logged_in(web.client(), "bo@newsroom.example"),
    )
    assert shown_pairs(ana.get("/")) == [first, second]
    assert rows(web.db_url, "SELECT DISTINCT claimed_by FROM pairs") == [(None,)], (
        "a GET claims nothing"
    )
    # Ana's page claims the pair she is on as it opens (a POST from its script).
    assert post(ana, f"/pairs/{first}/claim").status_code == 303
    page = bo.get("/")
    assert shown_pairs(page) == [second, first], "bo's first pair is the one nobody holds"
    assert "being reviewed by ana@newsroom.example" in page.text
    claims = rows(web.db_url, "SELECT id, claimed_by FROM pairs ORDER BY id")
    assert dict(claims)[first] == ana_id
    refused = post(bo, f"/pairs/{first}/decision", decision="confirm")
    assert refused.status_code == 409
    assert rows(web.db_url, "SELECT status FROM pairs WHERE id = %s", first) == [("suggested",)]
    # The lease runs out: the pair is free again for anyone.
    web.clock.moment += reviews.CLAIM_LEASE + timedelta(seconds=1)
    assert post(bo, f"/pairs/{first}/decision", decision="confirm").status_code == 303


def test_a_claim_is_a_conditional_update_only_one_racer_wins(web: Web, conn: Any) -> None:
    ana = add_user(web.db_url, "ana@newsroom.example", "analyst")
    bo = add_user(web.db_url, "bo@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    now = datetime.now(UTC)
    assert reviews.claim(conn, pair, ana, now)
    assert not reviews.claim(conn, pair, bo, now)
    assert reviews.claim(conn, pair, ana, now), "the holder renews"
    assert reviews.claim(conn, pair, bo, now + reviews.CLAIM_LEASE)


def test_reject_with_reason_skip_and_undo_are_recorded_and_audited(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    first = add_queue_pair(web.db_url, 0.9)
    second = add_queue_pair(web.db_url, 0.8)
    ana = logged_in(web.client(), "ana@newsroom.example")
    assert post(ana, f"/pairs/{first}/decision", decision="skip").status_code == 303
    assert shown_pairs(ana.get("/")) == [second, first], "a skipped pair goes to the back"
    response = post(ana, f"/pairs/{second}/decision", decision="reject", reason="other event")
    assert response.status_code == 303
    assert rows(web.db_url, "SELECT status FROM pairs WHERE id = %s", second) == [("rejected",)]
    assert shown_pairs(ana.get("/")) == [first]
    assert post(ana, "/reviews/undo").status_code == 303
    assert rows(web.db_url, "SELECT status FROM pairs WHERE id = %s", second) == [("suggested",)]
    assert post(ana, "/reviews/undo").status_code == 303, "then the skip is undone"
    assert shown_pairs(ana.get("/")) == [first, second]
    assert post(ana, "/reviews/undo").status_code == 409, "nothing left to undo"
    audit = rows(web.db_url, "SELECT action, target, details FROM audit_log ORDER BY id")
    assert audit == [
        ("pair.skip", f"pair:{first}", {"reason": None}),
        ("pair.reject", f"pair:{second}", {"reason": "other event"}),
        ("pair.undo", f"pair:{second}", {"decision": "reject"}),
        ("pair.undo", f"pair:{first}", {"decision": "skip"}),
    ]
    standing = rows(web.db_url, "SELECT count(*) FROM reviews WHERE undone_at IS NULL")
    assert standing == [(0,)]


def test_undo_leaves_a_pair_alone_that_someone_else_decided_since(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_user(web.db_url, "bo@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    ana, bo = (
        logged_in(web.client(), "ana@newsroom.example"),
        logged_in(web.client(), "bo@newsroom.example"),
    )
    assert post(ana, f"/pairs/{pair}/decision", decision="reject", reason="no").status_code == 303
    assert post(bo, "/reviews/undo").status_code == 409, "bo has nothing to undo"
    assert post(bo, f"/pairs/{pair}/decision", decision="confirm").status_code == 409


def test_relabelling_an_item_is_read_by_training_and_audited(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    rumour_id = rows(web.db_url, "SELECT rumour_id FROM pairs WHERE id = %s", pair)[0][0]
    ana = logged_in(web.client(), "ana@newsroom.example")
    assert post(ana, f"/items/{rumour_id}/label", label="other").status_code == 303
    assert post(ana, f"/items/{rumour_id}/label", label="nonsense").status_code == 400
    assert post(ana, "/items/999999/label", label="other").status_code == 404
    with psycopg.connect(web.db_url) as conn:
        assert labels.item_labels(conn)[rumour_id] == "other"
    audit = rows(web.db_url, "SELECT action, target FROM audit_log")
    assert audit == [("item.relabel", f"item:{rumour_id}")]


def test_a_viewer_can_look_but_not_act(web: Web) -> None:
    add_user(web.db_url, "vic@newsroom.example", "viewer")
    pair = add_queue_pair(web.db_url, 0.9)
    vic = logged_in(web.client(), "vic@newsroom.example")
    assert shown_pairs(vic.get("/")) == [pair]
    for path, form in (
        (f"/pairs/{pair}/decision", {"decision": "confirm"}),
        ("/reviews/undo", {}),
        (f"/items/{pair}/label", {"label": "other"}),
    ):
        assert post(vic, path, **form).status_code == 403, path
    assert rows(web.db_url, "SELECT claimed_by, status FROM pairs") == [(None, "suggested")]


def test_fetch_calls_get_json_back(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    ana = logged_in(web.client(), "ana@newsroom.example")
    headers = {"accept": "application/json", "x-csrf-token": csrf_token(ana, "/")}
    response = ana.post(f"/pairs/{pair}/decision", data={"decision": "confirm"}, headers=headers)
    assert response.json() == {"ok": True, "pair_id": pair, "decision": "confirm"}
    again = ana.post(f"/pairs/{pair}/decision", data={"decision": "confirm"}, headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"] == "This pair has already been decided."


def test_the_filters_narrow_the_queue(web: Web) -> None:
    add_user(web.db_url, "vic@newsroom.example", "viewer")
    ro = add_queue_pair(web.db_url, 0.9, language="ro", kind="factcheck", tags=("balkans",))
    en = add_queue_pair(web.db_url, 0.5, created_at=datetime(2026, 11, 1, 12, tzinfo=UTC))
    vic = logged_in(web.client(), "vic@newsroom.example")
    assert shown_pairs(vic.get("/?language=ro")) == [ro]
    assert shown_pairs(vic.get("/?language=EN")) == [en]
    assert shown_pairs(vic.get("/?kind=factcheck")) == [ro]
    assert shown_pairs(vic.get("/?tag=balkans")) == [ro]
    assert shown_pairs(vic.get("/?score_min=0.6")) == [ro]
    assert shown_pairs(vic.get("/?score_max=0.6")) == [en]
    assert shown_pairs(vic.get("/?from=2026-11-01&to=2026-11-01")) == [en]
    assert shown_pairs(vic.get("/?status=confirmed")) == []
    assert shown_pairs(vic.get("/?status=all")) == [ro, en]
    page = vic.get("/?kind=nope&score_min=2&from=yesterday&language=%3Cx%3E")
    assert shown_pairs(page) == [ro, en], "bad filters are ignored, with a message"
    assert "Unknown feed kind &#39;nope&#39;." in page.text
    assert "score_min must be a number from 0 to 1." in page.text
    assert "<x>" not in page.text


def test_the_filters_follow_edits_of_feeds_and_items(web: Web) -> None:
    # The filters read facets kept on the pair (migration 0014): edits must reach them.
    add_user(web.db_url, "vic@newsroom.example", "viewer")
    pair = add_queue_pair(web.db_url, 0.9, language="ro", kind="official", tags=("defence",))
    vic = logged_in(web.client(), "vic@newsroom.example")
    assert shown_pairs(vic.get("/?tag=defence&kind=official&language=ro")) == [pair]
    with psycopg.connect(web.db_url) as conn:
        conn.execute(
            "UPDATE feeds SET kind = 'factcheck', tags = '{health}' WHERE kind = 'official'"
        )
        conn.execute("UPDATE items SET language = 'uk-UA' WHERE language = 'ro'")
    assert shown_pairs(vic.get("/?tag=defence")) == []
    assert shown_pairs(vic.get("/?kind=official")) == []
    assert shown_pairs(vic.get("/?language=ro")) == []
    assert shown_pairs(vic.get("/?tag=health&kind=factcheck&language=uk")) == [pair]
    assert shown_pairs(vic.get("/?language=uk-ua")) == [pair]


def test_saved_views_belong_to_their_user(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_user(web.db_url, "bo@newsroom.example", "analyst")
    ana, bo = (
        logged_in(web.client(), "ana@newsroom.example"),
        logged_in(web.client(), "bo@newsroom.example"),
    )
    response = post(ana, "/views", name="Romanian", query="language=ro&junk=1&kind=media")
    assert response.status_code == 303
    assert response.headers["location"] == "/?language=ro&kind=media"
    assert '<a href="/?language=ro&amp;kind=media">Romanian</a>' in ana.get("/").text
    assert "Romanian" not in bo.get("/").text
    assert post(ana, "/views", name="bad", query="score_min=7").status_code == 400
    view_id = rows(web.db_url, "SELECT id FROM saved_views")[0][0]
    assert post(bo, f"/views/{view_id}/delete").status_code == 404
    assert post(ana, f"/views/{view_id}/delete").status_code == 303
    assert rows(web.db_url, "SELECT count(*) FROM saved_views") == [(0,)]


def test_a_form_cannot_send_the_browser_off_site(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    ana = logged_in(web.client(), "ana@newsroom.example")
    response = post(ana, f"/pairs/{pair}/decision", decision="skip", back="//evil.example/")
    assert response.headers["location"] == "/"


def test_moving_to_a_pair_claims_it_unless_someone_else_holds_it(web: Web) -> None:
    ana_id = add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_user(web.db_url, "bo@newsroom.example", "analyst")
    first = add_queue_pair(web.db_url, 0.9)
    second = add_queue_pair(web.db_url, 0.8)
    ana, bo = (
        logged_in(web.client(), "ana@newsroom.example"),
        logged_in(web.client(), "bo@newsroom.example"),
    )
    assert shown_pairs(ana.get("/")) == [first, second]  # ana holds the first
    headers = {"accept": "application/json", "x-csrf-token": csrf_token(ana, "/")}
    response = ana.post(f"/pairs/{second}/claim", headers=headers)
    assert response.status_code == 200
    assert response.json()["pair_id"] == second
    claims = dict(rows(web.db_url, "SELECT id, claimed_by FROM pairs"))
    assert claims == {first: None, second: ana_id}, "one pair at a time"
    bo_headers = {"accept": "application/json", "x-csrf-token": csrf_token(bo, "/")}
    refused = bo.post(f"/pairs/{second}/claim", headers=bo_headers)
    assert refused.status_code == 409
    assert refused.json()["detail"] == "Another analyst is reviewing this pair right now."
    assert bo.post("/pairs/999999/claim", headers=bo_headers).status_code == 404


def test_a_short_page_still_puts_skipped_and_held_pairs_after_the_rest(web: Web, conn: Any) -> None:
    ana = add_user(web.db_url, "ana@newsroom.example", "analyst")
    bo = add_user(web.db_url, "bo@newsroom.example", "analyst")
    best, good, fair = (add_queue_pair(web.db_url, score) for score in (0.9, 0.8, 0.7))
    now = datetime.now(UTC)
    assert reviews.decide(conn, best, ana, "skip", None, now).outcome == "ok"
    assert reviews.claim(conn, good, bo, now)
    page = reviews.queue(conn, ana, now, reviews.QueueFilter(), limit=1)
    assert [p.id for p in page] == [fair]
    assert reviews.claim(conn, best, ana, now)
    assert [p.id for p in reviews.queue(conn, ana, now, reviews.QueueFilter(), limit=1)] == [best]
    everything = reviews.queue(conn, ana, now, reviews.QueueFilter(), limit=3)
    assert [p.id for p in everything] == [best, fair, good]
