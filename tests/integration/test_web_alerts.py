"""The Alerts pages on a real PostgreSQL: a user's own subscriptions, following a story, ops
alerts and the outbox, through the same forms a browser posts; delivery to a real SMTP server."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time
from types import ModuleType
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Endpoints
from tests.factories import (
    add_feed,
    add_item,
    add_one_pair,
    add_user,
    analyst,
    csrf_token,
    log_in,
)
from tests.integration.test_web import make_app, query
from tests.smtpsink import SmtpSink
from tests.workerenv import smtp_port, worker_tasks
from tracker.domain import Prediction
from tracker.pipeline import alert_fanout
from tracker.storage import items, outbox, subscriptions
from tracker.storage.subscriptions import Rule, Subscription
from tracker.usecases import reviews as review_usecases

pytestmark = pytest.mark.integration

ANA = "ana@newsroom.example"
VIC = "vic@newsroom.example"
BOSS = "boss@newsroom.example"
FOLLOW_FORM = re.compile(
    r'<form method="post" action="/alerts/follow".*?name="(story_id|item_id)" value="(\d+)"',
    re.DOTALL,
)


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(db_url), follow_redirects=False) as test_client:
        yield test_client


def subscription_form(client: TestClient, **fields: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "keywords": "F-16",
        "min_score": "0.5",
        "delivery": "immediate",
        "at": "08:00",
        "tz": "UTC",
        "csrf_token": csrf_token(client, "/alerts"),
    }
    form.update(fields)
    return form


def own(db_url: str, email: str) -> list[Subscription]:
    with psycopg.connect(db_url) as conn:
        return subscriptions.listing(conn, email)


def stored_count(db_url: str) -> int:
    return int(query(db_url, "SELECT count(*) FROM alert_subscriptions")[0][0])


def test_a_user_adds_lists_and_removes_a_subscription_through_the_alerts_page(
    client: TestClient, db_url: str, conn: psycopg.Connection
) -> None:
    add_user(db_url, ANA, "analyst")
    log_in(client, ANA)
    page = client.get("/alerts")
    assert page.status_code == 200 and "No subscriptions yet" in page.text
    assert 'href="/alerts"' in client.get("/").text  # in the navigation
    form = subscription_form(
        client,
        keywords="F-16\navioane militare, Ucraina",
        tags="defence",
        feed_kind=["media", "social"],
        languages="ro, en-GB",
        min_score="0.7",
        delivery="daily",
        at="07:30",
        tz="Europe/Bucharest",
    )
    added = client.post("/alerts", data=form)
    assert added.status_code == 303 and added.headers["location"] == "/alerts"
    (sub,) = own(db_url, ANA)
    assert (sub.kind, sub.keywords, sub.tags) == (
        "rumours",
        ["F-16", "Ucraina", "avioane militare"],
        ["defence"],
    )
    assert (sub.feed_kinds, sub.languages, sub.min_probability) == (
        ["media", "social"],
        ["en", "ro"],
        pytest.approx(0.7),
    )
    assert (sub.delivery, sub.digest_at, sub.time_zone) == (
        "daily",
        time(7, 30),
        "Europe/Bucharest",
    )
    assert sub.user_id is not None
    listed = client.get("/alerts").text
    assert f"Subscription {sub.id} saved." in listed
    for shown in (
        "avioane militare",
        "defence",
        "media, social",
        "daily at 07:30 Europe/Bucharest",
    ):
        assert shown in listed
    assert f"Subscription {sub.id} saved." not in client.get("/alerts").text  # shown once

    # What the subscription has not sent yet is cancelled with it, as `tracker alerts remove`.
    held = outbox.Event(f"rumour:{sub.id}:item:1", ANA, "New rumour: x", "rumour", {}, sub.id)
    assert outbox.queue(conn, held)
    token = csrf_token(client, "/alerts")
    removed = client.post(f"/alerts/{sub.id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert own(db_url, ANA) == []
    assert query(db_url, "SELECT status FROM alert_outbox") == [("cancelled",)]
    assert "No subscriptions yet" in client.get("/alerts").text
    actions = [r[0] for r in query(db_url, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["alerts.subscribe", "alerts.remove"]


def test_alert_forms_without_the_csrf_token_are_refused_and_change_nothing(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, ANA, "admin")
    add_one_pair(db_url)
    log_in(client, ANA)
    with psycopg.connect(db_url) as conn:
        sub_id = subscriptions.subscribe(conn, Rule(email=ANA, keywords=["x"]))
    posts: list[tuple[str, dict[str, Any]]] = [
        ("/alerts", {"keywords": "F-16", "tz": "UTC"}),
        (f"/alerts/{sub_id}/remove", {}),
        ("/alerts/follow", {"story_id": "1"}),
        ("/alerts/ops", {"action": "subscribe"}),
    ]
    for path, form in posts:
        for extra in ({}, {"csrf_token": "forged"}):
            assert client.post(path, data={**form, **extra}).status_code == 403, path
    assert [s.id for s in own(db_url, ANA)] == [sub_id]
    assert stored_count(db_url) == 1


def test_a_viewer_manages_their_own_subscriptions_and_cannot_touch_anyone_elses(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, VIC, "viewer")
    with psycopg.connect(db_url) as conn:
        others = subscriptions.subscribe(conn, Rule(email=ANA, keywords=["secret topic"]))
    log_in(client, VIC)
    assert "secret topic" not in client.get("/alerts").text
    assert (
        client.post("/alerts", data=subscription_form(client, keywords="vaccin")).status_code == 303
    )
    (mine,) = own(db_url, VIC)
    assert mine.keywords == ["vaccin"]
    token = csrf_token(client, "/alerts")
    refused = client.post(f"/alerts/{others}/remove", data={"csrf_token": token})
    assert refused.status_code == 404 and "no such subscription" in refused.text
    assert client.post("/alerts/999999/remove", data={"csrf_token": token}).status_code == 404
    assert [s.id for s in own(db_url, ANA)] == [others]  # still active
    assert client.post(f"/alerts/{mine.id}/remove", data={"csrf_token": token}).status_code == 303
    assert own(db_url, VIC) == []
    # A viewer sees no ops section and no outbox link.
    page = client.get("/alerts").text
    assert "Ops alerts" not in page and "/alerts/outbox" not in page


def test_the_outbox_and_the_ops_toggle_are_for_admins_only(client: TestClient, db_url: str) -> None:
    assert client.get("/alerts").headers["location"] == "/login"
    assert client.get("/alerts/outbox").headers["location"] == "/login"
    for email, role in ((VIC, "viewer"), (ANA, "analyst")):
        add_user(db_url, email, role)
        log_in(client, email)
        assert client.get("/alerts/outbox").status_code == 403
        assert client.get("/alerts/outbox?failed=1").status_code == 403
        token = csrf_token(client, "/alerts")
        form = {"action": "subscribe", "csrf_token": token}
        assert client.post("/alerts/ops", data=form).status_code == 403
    assert stored_count(db_url) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tz": "Mars/Olympus"}, "Unknown time zone &#39;Mars/Olympus&#39;"),
        ({"tz": "../../etc/passwd"}, "Unknown time zone"),
        ({"delivery": "daily", "at": "25:00"}, "must be HH:MM"),
        ({"delivery": "daily", "at": "7.30pm"}, "must be HH:MM"),
        ({"min_score": "1.5"}, "between 0 and 1"),
        ({"min_score": "-0.1"}, "between 0 and 1"),
        ({"min_score": "nan"}, "between 0 and 1"),
        ({"min_score": "lots"}, "must be a number"),
        ({"keywords": "  ,\n ", "tags": ""}, "an empty rule would email you every rumour"),
        ({"keywords": "F-16, !!!"}, "has no letters or digits"),
        ({"feed_kind": ["blog"]}, "Unknown feed kind"),
        ({"delivery": "weekly"}, "Delivery must be one of"),
        ({"languages": "english!"}, "is not a language code"),
    ],
)
def test_an_invalid_subscription_form_shows_a_message_keeps_the_input_and_stores_nothing(
    client: TestClient, db_url: str, fields: dict[str, Any], message: str
) -> None:
    add_user(db_url, ANA, "analyst")
    log_in(client, ANA)
    form = subscription_form(client, **{"tags": "defence-typed", **fields})
    response = client.post("/alerts", data=form)
    assert response.status_code == 400
    assert message in response.text
    assert 'role="alert"' in response.text
    # What was typed comes back.
    assert f'name="tz" value="{form["tz"]}"' in response.text
    assert form["tags"] == "" or 'value="defence-typed"' in response.text
    assert stored_count(db_url) == 0


def test_following_a_story_from_the_review_queue_creates_a_follow_subscription(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, VIC, "viewer")
    add_one_pair(db_url)
    log_in(client, VIC)
    found = FOLLOW_FORM.search(client.get("/").text)
    assert found and found.group(1) == "story_id"
    story = int(found.group(2))
    form = {"story_id": str(story), "csrf_token": csrf_token(client, "/")}
    response = client.post("/alerts/follow", data=form)
    assert response.status_code == 303 and response.headers["location"] == "/alerts"
    (sub,) = own(db_url, VIC)
    assert (sub.kind, sub.story_id, sub.item_id, sub.min_probability) == ("story", story, None, 0.5)
    page = client.get("/alerts").text
    assert f"You follow story {story}" in page and f"Clarifications of story {story}" in page
    assert "Romanian F-16s are secretly flying missions over Ukraine" in page
    assert client.post("/alerts/follow", data=form).status_code == 303  # again: still one
    assert len(own(db_url, VIC)) == 1
    missing = client.post("/alerts/follow", data={**form, "story_id": "424242"})
    assert missing.status_code == 404 and "no such story" in missing.text
    bad = client.post("/alerts/follow", data={**form, "story_id": "1; DROP TABLE"})
    assert bad.status_code == 400
    assert client.post("/alerts/follow", data={"csrf_token": form["csrf_token"]}).status_code == 400
    assert len(own(db_url, VIC)) == 1
    # A rumour not (yet) in a story is followed by its item, as `--follow-item`.
    query(db_url, "UPDATE items SET story_id = NULL RETURNING id")
    found = FOLLOW_FORM.search(client.get("/").text)
    assert found and found.group(1) == "item_id"
    item_form = {"item_id": found.group(2), "csrf_token": form["csrf_token"]}
    assert client.post("/alerts/follow", data=item_form).status_code == 303
    assert [(s.story_id, s.item_id) for s in own(db_url, VIC)] == [
        (story, None),
        (None, int(found.group(2))),
    ]


def test_an_admin_turns_ops_alerts_on_and_off(client: TestClient, db_url: str) -> None:
    add_user(db_url, BOSS, "admin")
    add_user(db_url, "other-admin@newsroom.example", "admin")
    log_in(client, BOSS)
    page = client.get("/alerts").text
    assert "until someone does, every admin does" in page and 'value="subscribe"' in page
    token = csrf_token(client, "/alerts")
    assert (
        client.post("/alerts/ops", data={"action": "subscribe", "csrf_token": token}).status_code
        == 303
    )
    (sub,) = own(db_url, BOSS)
    assert sub.kind == "ops" and sub.user_id is not None
    assert "You are subscribed." in client.get("/alerts").text
    with psycopg.connect(db_url) as conn:
        assert outbox.queue_ops(conn, "e1", "Feed disabled: x", "body") == 1
    assert query(db_url, "SELECT recipient FROM alert_outbox") == [(BOSS,)]
    off = client.post("/alerts/ops", data={"action": "unsubscribe", "csrf_token": token})
    assert off.status_code == 303
    assert own(db_url, BOSS) == []
    page = client.get("/alerts").text
    assert "You do not get them." in page and "Nobody gets ops alerts now" in page
    with psycopg.connect(db_url) as conn:
        assert outbox.queue_ops(conn, "e2", "Feed disabled: y", "body") == 0
    assert client.post("/alerts/ops", data={"action": "x", "csrf_token": token}).status_code == 400


# --- delivery, through the relay task the workers run -------------------------------------


@pytest.fixture
def tasks(
    db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    with worker_tasks(db_url, services.broker_url, monkeypatch) as module:
        yield module


def add_rumour(conn: psycopg.Connection, title: str, tags: list[str] | None = None) -> int:
    feed = add_feed(
        conn, str(abs(hash(title))), title="Stiri Rapide", language="ro", tags=tags or ["defence"]
    )
    return add_item(
        conn,
        feed,
        title,
        "Piloti vazuti.",
        None,
        None,
        url="https://stiri.example/1",
        dedupe_key=title,
    )


def classified_as_rumour(conn: psycopg.Connection, item_id: int, probability: float) -> int:
    # What the classify stage does in its transaction once the model says "rumour".
    with conn.transaction():
        found = items.for_model(conn, [item_id])
        return alert_fanout.rumours(conn, [(found[0], Prediction("rumour", probability))])


def test_a_subscription_made_on_the_web_gets_a_matching_rumour_by_email(
    client: TestClient, db_url: str, conn: psycopg.Connection, tasks: ModuleType
) -> None:
    add_user(db_url, ANA, "analyst")
    log_in(client, ANA)
    form = subscription_form(
        client, keywords="avioanele f-16", languages="ro", feed_kind=["media"], min_score="0.6"
    )
    assert client.post("/alerts", data=form).status_code == 303
    assert classified_as_rumour(conn, add_rumour(conn, "Avioanele F-16 peste Ucraina"), 0.9) == 1
    assert classified_as_rumour(conn, add_rumour(conn, "Avioanele F-16 din nou"), 0.55) == 0
    assert classified_as_rumour(conn, add_rumour(conn, "Vremea de maine"), 0.95) == 0
    with SmtpSink(smtp_port()) as smtp:
        assert tasks.relay_outbox() == 1
        assert tasks.relay_outbox() == 0
    (mail,) = smtp.messages
    assert mail["To"] == ANA
    assert mail["Subject"] == "New rumour: Avioanele F-16 peste Ucraina"
    assert mail["List-Unsubscribe"].strip().startswith("<http://tracker.example/unsubscribe/")
    admin_view = query(db_url, "SELECT status, attempts FROM alert_outbox")
    assert admin_view == [("sent", 1)]


def test_following_a_story_on_the_web_emails_its_confirmed_clarification(
    client: TestClient, db_url: str, conn: psycopg.Connection, tasks: ModuleType
) -> None:
    add_user(db_url, VIC, "viewer")
    pair_id = add_one_pair(db_url)
    log_in(client, VIC)
    found = FOLLOW_FORM.search(client.get("/").text)
    assert found
    form = {found.group(1): found.group(2), "csrf_token": csrf_token(client, "/")}
    assert client.post("/alerts/follow", data=form).status_code == 303
    review_usecases.decide(conn, pair_id, analyst(conn), "confirm", None, datetime.now(UTC))
    with SmtpSink(smtp_port()) as smtp:
        assert tasks.relay_outbox() == 1
    (mail,) = smtp.messages
    assert mail["To"] == VIC
    assert mail["Subject"].startswith("Clarification confirmed: Romanian F-16s")


def test_a_failed_alert_shows_on_the_outbox_page_with_its_attempts_and_error(
    client: TestClient, db_url: str, conn: psycopg.Connection, tasks: ModuleType
) -> None:
    add_user(db_url, BOSS, "admin")
    outbox.enqueue(conn, "ok", "a@example.org", "Sent one", "body")
    with SmtpSink(smtp_port()):
        assert tasks.relay_outbox() == 1
    outbox.enqueue(conn, "down", "b@example.org", "Waiting <b>one</b>", "body")
    assert tasks.relay_outbox() == 0  # nothing listens on the SMTP port now
    outbox.enqueue(conn, "dead", "c@example.org", "Given up one", "body")
    conn.execute(
        "UPDATE alert_outbox SET status = 'dead', attempts = 8, "
        "last_error = 'SMTPRecipientsRefused: <img src=x onerror=alert(1)>' "
        "WHERE dedupe_key = 'dead'"
    )
    outbox.enqueue(conn, "new", "d@example.org", "Queued one", "body")
    log_in(client, BOSS)
    everything = client.get("/alerts/outbox")
    assert everything.status_code == 200
    assert ">queued<" in _row(everything.text, "Queued one")
    assert ">sent<" in _row(everything.text, "Sent one")
    assert all(s in everything.text for s in ("Sent one", "Waiting &lt;b&gt;one&lt;/b&gt;"))
    failed = client.get("/alerts/outbox?failed=1").text
    assert "Sent one" not in failed and "Queued one" not in failed
    waiting = _row(failed, "Waiting")
    assert ">retrying<" in waiting and "<td>1</td>" in waiting
    assert "ConnectionRefusedError" in waiting and "next try" in waiting
    dead = _row(failed, "Given up one")
    assert ">failed<" in dead and "<td>8</td>" in dead
    assert "&lt;img src=x onerror=alert(1)&gt;" in dead and "<img" not in failed


def test_the_outbox_says_where_sent_mail_went_and_why_a_row_was_cancelled(
    client: TestClient, db_url: str, conn: psycopg.Connection
) -> None:
    add_user(db_url, BOSS, "admin")
    sub = subscriptions.subscribe(conn, Rule(email="desk@example.org"))
    outbox.enqueue(conn, "gone", "desk@example.org", "Never sent", "body")
    conn.execute("UPDATE alert_outbox SET subscription_id = %s", (sub,))
    subscriptions.unsubscribe(conn, sub)
    log_in(client, BOSS)
    page = client.get("/alerts/outbox").text
    assert ">cancelled: the subscriber unsubscribed<" in _row(page, "Never sent")
    # This app has no SMTP host configured: its "sent" is a file, and the page says so.
    assert "No SMTP server is configured" in page and ".eml" in page


def _row(page: str, subject: str) -> str:
    for row in re.findall(r'<tr id="outbox-\d+".*?</tr>', page, re.DOTALL):
        if subject in row:
            return str(row)
    raise AssertionError(f"no outbox row for {subject!r}")
