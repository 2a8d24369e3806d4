"""Undo in the review queue beyond pair decisions: relabels taken back, a confirmation's unsent
alerts withdrawn (a real SMTP server receives the sent ones); the password form throttled."""

from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Endpoints
from tests.factories import PASSWORD, add_queue_pair, add_user, csrf_token, log_in, logged_in
from tests.integration.test_review_queue import Web, post, rows, web
from tests.smtpsink import SmtpSink, outbox_statuses
from tests.workerenv import smtp_port, worker_tasks
from tracker.storage import browse, labels, subscriptions
from tracker.storage.subscriptions import Rule
from tracker.web import auth

pytestmark = pytest.mark.integration
__all__ = ["web"]  # the fixture, imported for these tests

NEW_PASSWORD = "another long enough password"


@pytest.fixture
def tasks(
    db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    with worker_tasks(db_url, services.broker_url, monkeypatch) as module:
        yield module


def rumour_of(web: Web, pair: int) -> int:
    return int(rows(web.db_url, "SELECT rumour_id FROM pairs WHERE id = %s", pair)[0][0])


def test_undoing_relabels_restores_the_label_before_each_and_is_audited(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    item = rumour_of(web, add_queue_pair(web.db_url, 0.9))
    ana = logged_in(web.client(), "ana@newsroom.example")
    assert post(ana, f"/items/{item}/label", label="other").status_code == 303
    assert post(ana, f"/items/{item}/label", label="clarification").status_code == 303
    # As our script's fetch call asks: JSON back, saying what was undone.
    headers = {"accept": "application/json", "x-csrf-token": csrf_token(ana, "/")}
    answer = ana.post("/reviews/undo", headers=headers)
    assert answer.status_code == 200
    result = answer.json()
    assert (result["decision"], result["item_id"], result["label"]) == (
        "relabel",
        item,
        "clarification",
    )
    assert result["label_now"] == "other"
    assert "the analysts' label other stands again" in result["message"]
    with psycopg.connect(web.db_url) as conn:
        assert labels.item_labels(conn)[item] == "other"
        assert [entry.label for entry in browse.analyst_labels(conn, item)] == ["other"]
    assert post(ana, "/reviews/undo").status_code == 303
    with psycopg.connect(web.db_url) as conn:
        assert item not in labels.item_labels(conn), "no analyst label stands any more"
    page = ana.get("/").text
    assert f"Undone: item {item} relabelled other; no analyst label stands for it now." in page
    assert "Undone:" not in ana.get("/").text, "the notice is shown once"
    assert post(ana, "/reviews/undo").status_code == 409
    audit = rows(web.db_url, "SELECT action, target, details FROM audit_log ORDER BY id")
    assert audit[2:] == [
        ("item.relabel_undo", f"item:{item}", {"label": "clarification", "label_now": "other"}),
        ("item.relabel_undo", f"item:{item}", {"label": "other", "label_now": None}),
    ]
    assert rows(web.db_url, "SELECT count(*) FROM item_labels") == [(2,)], "kept for the record"


def test_undo_takes_back_the_latest_action_be_it_a_decision_or_a_relabel(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_user(web.db_url, "bo@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    item = rumour_of(web, pair)
    ana, bo = (
        logged_in(web.client(), "ana@newsroom.example"),
        logged_in(web.client(), "bo@newsroom.example"),
    )
    assert post(ana, f"/pairs/{pair}/decision", decision="reject", reason="no").status_code == 303
    assert post(ana, f"/items/{item}/label", label="other").status_code == 303
    assert post(bo, f"/items/{item}/label", label="rumour").status_code == 303
    assert post(ana, "/reviews/undo").status_code == 303
    status = rows(web.db_url, "SELECT status FROM pairs WHERE id = %s", pair)
    assert status == [("rejected",)], "the relabel came last: it is what was undone"
    with psycopg.connect(web.db_url) as conn:
        assert labels.item_labels(conn)[item] == "rumour", "bo's label is not ana's to undo"
    assert post(ana, "/reviews/undo").status_code == 303
    status = rows(web.db_url, "SELECT status FROM pairs WHERE id = %s", pair)
    assert status == [("suggested",)]
    standing = rows(web.db_url, "SELECT label FROM item_labels WHERE undone_at IS NULL")
    assert standing == [("rumour",)]


def _follow(conn: psycopg.Connection, email: str, story: int, delivery: str) -> int:
    return subscriptions.subscribe(
        conn, Rule(email=email, kind="story", story_id=story, delivery=delivery)
    )


def test_undoing_a_confirm_withdraws_its_unsent_alerts_and_says_which_were_already_sent(
    web: Web, tasks: ModuleType
) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    with psycopg.connect(web.db_url, autocommit=True) as conn:
        story = rows(web.db_url, "SELECT story_id FROM items WHERE id = %s", rumour_of(web, pair))
        _follow(conn, "now@example.org", story[0][0], "immediate")
        _follow(conn, "hourly@example.org", story[0][0], "hourly")
    ana = logged_in(web.client(), "ana@newsroom.example")
    assert post(ana, f"/pairs/{pair}/decision", decision="confirm").status_code == 303
    with SmtpSink(smtp_port()) as smtp:
        assert tasks.relay_outbox() == 1
    assert [m["To"] for m in smtp.messages] == ["now@example.org"]
    assert post(ana, "/reviews/undo").status_code == 303
    page = ana.get("/?status=all").text
    assert (
        f"Undone: pair {pair} confirmed. 1 alert not sent yet withdrawn. "
        "1 alert already sent could not be taken back."
    ) in page
    outbox = rows(
        web.db_url,
        "SELECT recipient, status, payload->>'cancelled' FROM alert_outbox ORDER BY id",
    )
    assert outbox == [
        ("now@example.org", "sent", None),
        ("hourly@example.org", "cancelled", "confirmation undone"),
    ]
    (audit,) = rows(web.db_url, "SELECT details FROM audit_log WHERE action = 'pair.undo'")
    assert audit == ({"decision": "confirm", "alerts_withdrawn": 1, "alerts_sent": 1},)
    # Confirmed again: the withdrawn alert is queued anew; the sent one is not sent twice.
    assert post(ana, f"/pairs/{pair}/decision", decision="confirm").status_code == 303
    with psycopg.connect(web.db_url) as conn:
        assert outbox_statuses(conn) == {"sent": 1, "cancelled": 1, "held": 1}


def test_undoing_a_reject_or_a_skip_touches_no_alerts(web: Web, tasks: ModuleType) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pair = add_queue_pair(web.db_url, 0.9)
    with psycopg.connect(web.db_url, autocommit=True) as conn:
        story = rows(web.db_url, "SELECT story_id FROM items WHERE id = %s", rumour_of(web, pair))
        _follow(conn, "now@example.org", story[0][0], "immediate")
        conn.execute(
            """INSERT INTO alert_outbox (dedupe_key, recipient, subject, body_text)
               VALUES ('other', 'now@example.org', 'Something else', 'text')"""
        )
    ana = logged_in(web.client(), "ana@newsroom.example")
    assert post(ana, f"/pairs/{pair}/decision", decision="reject", reason="no").status_code == 303
    assert post(ana, "/reviews/undo").status_code == 303
    with psycopg.connect(web.db_url) as conn:
        assert outbox_statuses(conn) == {"pending": 1}


# --- the password form, throttled like login -------------------------------------------------


def change_password(client: TestClient, current: str) -> httpx.Response:
    return post(
        client,
        auth.PASSWORD_PATH,
        current_password=current,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )


def test_wrong_current_passwords_lock_the_account_as_failed_logins_do(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_user(web.db_url, "bo@newsroom.example", "analyst")
    ana = logged_in(web.client(), "ana@newsroom.example")
    for _ in range(4):
        answer = change_password(ana, "wrong password!")
        assert answer.status_code == 400
        assert "The current password is wrong." in answer.text
    fifth = change_password(ana, "wrong password!")
    assert fifth.status_code == 429
    assert "Too many wrong passwords. Try again in 15 minutes." in fifth.text
    assert fifth.headers["retry-after"] == "900"
    assert change_password(ana, PASSWORD).status_code == 429, "refused before it is checked"
    assert log_in(web.client(), "ana@newsroom.example", PASSWORD).status_code == 429, "one count"
    assert log_in(web.client(), "bo@newsroom.example", PASSWORD).status_code == 303
    locks = rows(web.db_url, "SELECT actor, action, target FROM audit_log")
    assert locks == [("login-throttle", "login.locked", "account:ana@newsroom.example")]
    web.clock.moment += timedelta(minutes=16)
    assert change_password(ana, PASSWORD).status_code == 303
    assert log_in(web.client(), "ana@newsroom.example", NEW_PASSWORD).status_code == 303


def test_a_failed_login_and_a_wrong_current_password_add_up(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    for _ in range(3):
        assert log_in(web.client(), "ana@newsroom.example", "wrong password!").status_code == 401
    ana = logged_in(web.client(), "ana@newsroom.example")  # a success clears the account's count
    for _ in range(4):
        assert change_password(ana, "wrong password!").status_code == 400
    assert log_in(web.client(), "ana@newsroom.example", "wrong password!").status_code == 429
