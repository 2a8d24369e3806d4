"""The pair page and links that stay inside the app: full texts, links to items and story,
decision history, the queue's actions with feedback, following without leaving the page."""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.factories import add_queue_pair, add_review, add_user, csrf_token, logged_in
from tests.integration.test_review_queue import Clock, Web, rows

pytestmark = pytest.mark.integration

LONG = "The ministry says no troops are at the border. " * 30  # far over the queue's 600
NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.DOTALL)


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    pages = Web(db_url, Clock(), [])
    yield pages
    for client in pages.clients:
        client.__exit__(None, None, None)


def notice(page: str) -> str:
    found = NOTICE.search(page)
    assert found, page[-2000:]
    return " ".join(found.group(1).split())


def ids(db_url: str, pair_id: int) -> tuple[int, int, int]:
    [(rumour, clarification, story)] = rows(
        db_url,
        """SELECT p.rumour_id, p.clarification_id, r.story_id FROM pairs p
           JOIN items r ON r.id = p.rumour_id WHERE p.id = %s""",
        pair_id,
    )
    return rumour, clarification, story


def test_the_pair_page_shows_both_texts_in_full_with_links_inside_the_app(web: Web) -> None:
    add_user(web.db_url, "vi@newsroom.example", "viewer")
    pair = add_queue_pair(web.db_url, 0.83)
    rows(
        web.db_url,
        "UPDATE items SET summary = %s, url = 'https://ministry.example/a' "
        "WHERE id = (SELECT clarification_id FROM pairs WHERE id = %s) RETURNING id",
        LONG,
        pair,
    )
    rumour, clarification, story = ids(web.db_url, pair)
    viewer = logged_in(web.client(), "vi@newsroom.example")
    page = viewer.get(f"/pairs/{pair}")
    assert page.status_code == 200
    assert LONG.strip() in page.text
    assert "score 0.83" in page.text and "troops" in page.text
    for link in (
        f'href="/items/{rumour}"',
        f'href="/items/{clarification}"',
        f'href="/stories/{story}"',
    ):
        assert link in page.text
    assert 'href="https://ministry.example/a"' in page.text  # the article, as a second link
    assert "Nobody has decided on this pair yet." in page.text
    assert 'action="/pairs/' not in page.text, "a viewer gets no decision forms"
    assert viewer.get("/pairs/999999").status_code == 404


def test_an_analyst_decides_and_undoes_on_the_pair_page_and_sees_the_history(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.7)
    ana = logged_in(web.client(), "ana@newsroom.example")
    form = {"csrf_token": csrf_token(ana, f"/pairs/{pair}"), "back": f"/pairs/{pair}"}
    confirmed = ana.post(f"/pairs/{pair}/decision", data={**form, "decision": "confirm"})
    assert confirmed.headers["location"] == f"/pairs/{pair}"
    page = ana.get(f"/pairs/{pair}").text
    assert notice(page) == f"Pair {pair} confirmed."
    assert "ana@newsroom.example" in page and ">confirm<" in page
    undone = ana.post("/reviews/undo", data=form)
    assert undone.headers["location"] == f"/pairs/{pair}"
    page = ana.get(f"/pairs/{pair}").text
    assert notice(page).startswith(f"Undone: pair {pair} confirmed.")
    assert "(undone " in page and 'name="decision" value="confirm"' in page


def test_a_rejection_needs_a_reason_on_every_page(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.7)
    ana = logged_in(web.client(), "ana@newsroom.example")
    for page in ("/", "/pairs?status=suggested", f"/pairs/{pair}"):
        html = ana.get(page).text
        assert re.search(r'name="reason"[^>]*required', html), page
        assert "(optional)" not in html, page
    blank = {"csrf_token": csrf_token(ana, "/"), "decision": "reject", "reason": "  "}
    refused = ana.post(f"/pairs/{pair}/decision", data=blank)
    assert refused.status_code == 400 and "A rejection needs a reason." in refused.text
    assert rows(web.db_url, "SELECT status FROM pairs") == [("suggested",)]
    given = {**blank, "reason": "different events"}
    assert ana.post(f"/pairs/{pair}/decision", data=given).status_code == 303
    assert rows(web.db_url, "SELECT decision, reason FROM reviews") == [
        ("reject", "different events")
    ]


def test_an_auto_confirmed_pair_says_nobody_reviewed_it(web: Web) -> None:
    add_user(web.db_url, "vi@newsroom.example", "viewer")
    pair = add_queue_pair(web.db_url, 0.99)
    rows(web.db_url, "UPDATE pairs SET status = 'confirmed' RETURNING id")
    page = logged_in(web.client(), "vi@newsroom.example").get(f"/pairs/{pair}").text
    assert "Confirmed automatically" in page


def test_following_from_the_queue_stays_there_with_words_that_fit_the_story(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    first = add_queue_pair(web.db_url, 0.9)
    second = add_queue_pair(web.db_url, 0.8)
    rows(web.db_url, "UPDATE pairs SET status = 'confirmed' WHERE id = %s RETURNING id", second)
    ana = logged_in(web.client(), "ana@newsroom.example")
    queue = ana.get("/").text
    _, _, story = ids(web.db_url, first)
    rumour = ids(web.db_url, first)[0]
    assert f'href="/items/{rumour}"' in queue, "queue titles open the item page"
    assert f'href="/pairs/{first}"' in queue
    followed = ana.post(
        "/alerts/follow", data={"csrf_token": csrf_token(ana, "/"), "story_id": story, "back": "/"}
    )
    assert followed.headers["location"] == "/"
    assert notice(ana.get("/").text) == (
        f"You follow story {story}: you will get an email when a clarification is suggested "
        "or confirmed."
    )
    _, _, answered = ids(web.db_url, second)
    ana.post(
        "/alerts/follow",
        data={"csrf_token": csrf_token(ana, "/"), "story_id": answered, "back": f"/pairs/{second}"},
    )
    assert "It is already clarified" in notice(ana.get(f"/pairs/{second}").text)


def alerts_queued(db_url: str) -> int:
    return int(rows(db_url, "SELECT count(*) FROM alert_outbox")[0][0])


def test_automatically_confirmed_pairs_have_a_filter_and_a_daily_spot_check(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    auto = [add_queue_pair(web.db_url, 0.99) for _ in range(12)]
    reviewed = add_queue_pair(web.db_url, 0.98)
    rows(web.db_url, "UPDATE pairs SET status = 'confirmed' RETURNING id")
    add_review(web.db_url, reviewed, "confirm", previous_status="suggested")
    ana = logged_in(web.client(), "ana@newsroom.example")
    listed = {int(i) for i in re.findall(r'id="pair-(\d+)"', ana.get("/pairs?status=auto").text)}
    assert listed == set(auto), "the reviewed pair is not among the automatic ones"
    today = re.findall(r'id="pair-(\d+)"', ana.get("/pairs?status=spot-check").text)
    assert len(today) == 10 and set(map(int, today)) <= set(auto)
    assert re.findall(r'id="pair-(\d+)"', ana.get("/pairs?status=spot-check").text) == today
    web.clock.moment += timedelta(days=1)
    tomorrow = re.findall(r'id="pair-(\d+)"', ana.get("/pairs?status=spot-check").text)
    assert tomorrow != today, "another sample the next day"


def test_an_analyst_rejects_a_wrong_automatic_confirmation_and_can_undo_it(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    wrong, right = add_queue_pair(web.db_url, 0.99), add_queue_pair(web.db_url, 0.99)
    rows(web.db_url, "UPDATE pairs SET status = 'confirmed' RETURNING id")
    ana = logged_in(web.client(), "ana@newsroom.example")
    page = " ".join(ana.get(f"/pairs/{wrong}").text.split())
    assert "Nobody has checked it yet" in page and ">It is right<" in page and "Skip" not in page
    form = {"csrf_token": csrf_token(ana, f"/pairs/{wrong}"), "back": "/pairs?status=spot-check"}
    rejected = ana.post(
        f"/pairs/{wrong}/decision", data={**form, "decision": "reject", "reason": "other event"}
    )
    assert rejected.headers["location"] == "/pairs?status=spot-check"
    before = alerts_queued(web.db_url)
    assert ana.post(f"/pairs/{right}/decision", data={**form, "decision": "confirm"}).is_redirect
    assert alerts_queued(web.db_url) == before, "its confirmation alerts went out already"
    statuses = dict(rows(web.db_url, "SELECT id, status FROM pairs"))
    assert statuses == {wrong: "rejected", right: "confirmed"}
    assert re.findall(r'id="pair-(\d+)"', ana.get("/pairs?status=auto").text) == []
    skip = ana.post(f"/pairs/{right}/decision", data={**form, "decision": "skip"})
    assert skip.status_code == 409
    ana.post("/reviews/undo", data=form)  # the confirmation check
    ana.post("/reviews/undo", data=form)  # the rejection
    assert dict(rows(web.db_url, "SELECT id, status FROM pairs")) == {
        wrong: "confirmed",
        right: "confirmed",
    }
