"""Alerts end to end on real PostgreSQL and a real SMTP server: matching, digests, follows,
unsubscribe, outages, concurrent relays and a relay killed mid-send."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import free_port
from tests.factories import add_feed, add_item, add_story, add_user, analyst, suggest
from tests.smtpsink import SmtpSink, outbox_statuses, text_of
from tracker.config import Settings
from tracker.domain import Prediction
from tracker.pipeline import alert_fanout, alert_ops, alerts
from tracker.pipeline.alerts import SmtpMailer
from tracker.storage import heartbeats, items, outbox, subscriptions
from tracker.storage.subscriptions import Rule
from tracker.usecases import reviews as review_usecases
from tracker.usecases.reviews import DecisionRefused
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

SECRET = "s" * 40
PUBLIC = "http://tracker.example"


def classify(conn: psycopg.Connection, item_ids: list[int], probability: float = 0.9) -> int:
    found = items.for_model(conn, item_ids)
    with conn.transaction():
        return alert_fanout.rumours(
            conn, [(row, Prediction("rumour", probability)) for row in found]
        )


def subscribe(conn: psycopg.Connection, **rule: Any) -> int:
    return subscriptions.subscribe(conn, Rule(**{"email": "desk@example.org", **rule}))


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_s=2))


def relay(conn: psycopg.Connection, port: int, now: datetime | None = None) -> int:
    return alerts.relay(
        conn, mailer(port), "t@example.org", public_url=PUBLIC, secret_key=SECRET, now=now
    )


def test_a_matching_rumour_is_emailed_at_once_with_text_html_and_an_unsubscribe_link(
    conn: psycopg.Connection,
) -> None:
    courier = add_feed(conn, "Daily Courier", tags=["defence"])
    subscribe(conn, keywords=["f-16"], tags=["defence"])
    subscribe(conn, email="health@example.org", keywords=["vaccine"])
    rumour = add_item(
        conn,
        courier,
        "F-16s fly secret missions over Ukraine",
        "Pilots were seen near the border.",
        url="https://news.example/f-16s",
    )
    add_item(conn, courier, "Weather: sunny spells")
    assert classify(conn, [rumour, rumour + 1]) == 1
    with SmtpSink() as smtp:
        assert relay(conn, smtp.port) == 1
    (mail,) = smtp.messages
    assert mail["To"] == "desk@example.org"
    assert mail["Subject"] == "New rumour: F-16s fly secret missions over Ukraine"
    assert {p.get_content_type() for p in mail.walk()} >= {"text/plain", "text/html"}
    assert "Daily Courier" in text_of(mail) and "Score: 0.90" in text_of(mail)
    assert f"Review: {PUBLIC}/" in text_of(mail)
    assert mail["List-Unsubscribe"].strip().startswith(f"<{PUBLIC}/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_below_threshold_or_unmatched_rumour_is_not_alerted(conn: psycopg.Connection) -> None:
    courier = add_feed(conn, "Daily Courier", kind="media")
    subscribe(conn, min_probability=0.8)
    subscribe(conn, email="official@example.org", feed_kinds=["official"])
    rumour = add_item(conn, courier, "F-16s over Ukraine")
    assert classify(conn, [rumour], probability=0.7) == 0


def test_a_story_carried_by_several_outlets_alerts_a_subscriber_once(
    conn: psycopg.Connection,
) -> None:
    subscribe(conn, keywords=["F-16"])
    outlets = [add_feed(conn, name) for name in ("Daily Courier", "Balkan Wire", "Stiri")]
    copies = [add_item(conn, f, f"F-16s over Ukraine, says outlet {f}") for f in outlets]
    assert classify(conn, copies) == 3
    # Pairing groups the copies into one story after classification, before the relay runs.
    story = add_story(conn, "F-16s")
    conn.execute("UPDATE items SET story_id = %s WHERE id = ANY(%s)", (story, copies))
    later = add_item(conn, outlets[0], "F-16s over Ukraine, again", story_id=story)
    assert classify(conn, [later]) == 1  # queued, then cancelled by the relay
    with SmtpSink() as smtp:
        assert relay(conn, smtp.port) == 1
        assert relay(conn, smtp.port) == 0
    assert len(smtp.messages) == 1
    assert outbox_statuses(conn) == {"sent": 1, "cancelled": 3}


def test_a_digest_collapses_a_burst_into_one_email_when_its_hour_comes(
    conn: psycopg.Connection,
) -> None:
    courier = add_feed(conn, "Daily Courier")
    sub_id = subscribe(conn, delivery="hourly")
    subscribe(conn, email="now@example.org")
    burst = [add_item(conn, courier, f"Rumour number {n}") for n in range(4)]
    assert classify(conn, burst) == 8
    now = datetime.now(UTC)
    with SmtpSink() as smtp:
        assert relay(conn, smtp.port, now=now) == 4  # the immediate subscriber's
        assert relay(conn, smtp.port, now=now + timedelta(hours=1)) == 1
        assert relay(conn, smtp.port, now=now + timedelta(hours=2)) == 0
    digest = [m for m in smtp.messages if m["To"] == "desk@example.org"]
    assert len(digest) == 1 and digest[0]["Subject"] == "Rumour Tracker digest: 4 new alerts"
    body = text_of(digest[0])
    assert all(f"Rumour number {n}" in body for n in range(4))
    held = conn.execute(
        "SELECT count(*) FROM alert_outbox WHERE subscription_id = %s AND status = 'digested'",
        (sub_id,),
    ).fetchone()
    assert held == (4,)


def test_a_daily_digest_waits_for_the_chosen_local_time(conn: psycopg.Connection) -> None:
    courier = add_feed(conn, "Daily Courier")
    now = datetime.now(UTC)
    at = (now + timedelta(hours=2)).astimezone(UTC).time().replace(second=0, microsecond=0)
    subscribe(conn, delivery="daily", digest_at=at, time_zone="Asia/Kolkata")
    classify(conn, [add_item(conn, courier, "A rumour")])
    with SmtpSink() as smtp:
        assert relay(conn, smtp.port, now=now) == 0
        assert relay(conn, smtp.port, now=now + timedelta(hours=26)) == 1
    assert outbox_statuses(conn) == {"sent": 1, "digested": 1}


def follow_setup(conn: psycopg.Connection) -> tuple[list[int], int, int]:
    story = add_story(conn, "F-16s")
    rumours = [
        add_item(conn, add_feed(conn, name), f"F-16s over Ukraine ({name})", story_id=story)
        for name in ("Daily Courier", "Balkan Wire")
    ]
    ministry = add_feed(conn, "Ministry of Defence", kind="official")
    clarification = add_item(conn, ministry, "Ministry: the F-16 report is false")
    return rumours, clarification, story


def test_a_followed_story_emails_when_a_clarification_is_suggested_and_when_it_is_confirmed(
    conn: psycopg.Connection,
) -> None:
    rumours, clarification, story = follow_setup(conn)
    subscribe(conn, kind="story", story_id=story, min_probability=0.6)
    subscribe(conn, email="item@example.org", kind="story", item_id=rumours[1])
    with conn.transaction():
        for rumour in rumours:
            suggest(conn, rumour, clarification, 0.8)
    other = add_item(conn, add_feed(conn, "Fact desk", kind="factcheck"), "Weak match")
    with conn.transaction():
        suggest(conn, rumours[0], other, 0.55)  # under desk's 0.6
    (pair_id,) = conn.execute(
        "SELECT id FROM pairs WHERE rumour_id = %s AND clarification_id = %s",
        (rumours[0], clarification),
    ).fetchone() or (None,)
    with conn.transaction():
        review_usecases.decide(conn, pair_id, analyst(conn), "confirm", None, datetime.now(UTC))
    with pytest.raises(DecisionRefused), conn.transaction():  # decided: no second alert
        review_usecases.decide(conn, pair_id, analyst(conn), "confirm", None, datetime.now(UTC))
    with SmtpSink() as smtp:
        assert relay(conn, smtp.port) == 5
    got = sorted((m["To"], m["Subject"]) for m in smtp.messages)
    assert got == [
        ("desk@example.org", "Clarification confirmed: F-16s over Ukraine (Daily Courier)"),
        ("desk@example.org", "Clarification suggested: F-16s over Ukraine (Daily Courier)"),
        ("item@example.org", "Clarification confirmed: F-16s over Ukraine (Daily Courier)"),
        # One per clarification however many outlets' copies it answers; the weak match
        # passes item@'s default minimum of 0.5 but not desk@'s 0.6.
        ("item@example.org", "Clarification suggested: F-16s over Ukraine (Daily Courier)"),
        ("item@example.org", "Clarification suggested: F-16s over Ukraine (Daily Courier)"),
    ]
    confirmed = next(m for m in smtp.messages if "confirmed" in m["Subject"])
    assert "Ministry: the F-16 report is false" in text_of(confirmed)
    assert f"{PUBLIC}/pairs?status=confirmed#pair-{pair_id}" in text_of(confirmed)


def test_unsubscribing_through_the_link_in_an_email_stops_further_alerts(
    conn: psycopg.Connection, db_url: str
) -> None:
    courier = add_feed(conn, "Daily Courier")
    sub_id = subscribe(conn)
    classify(conn, [add_item(conn, courier, "First rumour")])
    with SmtpSink() as smtp:
        relay(conn, smtp.port)
    link = smtp.messages[0]["List-Unsubscribe"].strip()[1:-1]
    path = link.removeprefix(PUBLIC)
    classify(conn, [add_item(conn, courier, "Second rumour")])  # queued, not sent yet
    settings = Settings(database_url=SecretStr(db_url), secret_key=SecretStr(SECRET))
    with TestClient(create_app(settings), follow_redirects=False) as client:
        form = client.get(path)
        assert form.status_code == 200 and "desk@example.org" in form.text
        assert f'action="{path}"' in form.text
        assert subscriptions.get(conn, sub_id).unsubscribed_at is None  # type: ignore[union-attr]
        # RFC 8058 one-click: no session, no CSRF token, just the signed URL.
        done = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and "no longer gets" in done.text
        assert client.post(path).status_code == 200  # twice is harmless
        assert client.get("/unsubscribe/" + path.rsplit("/", 1)[1][:-3] + "abc").status_code == 404
        assert client.post("/unsubscribe/1.forged").status_code == 404
    assert subscriptions.get(conn, sub_id).unsubscribed_at is not None  # type: ignore[union-attr]
    assert outbox_statuses(conn) == {"sent": 1, "cancelled": 1}
    assert classify(conn, [add_item(conn, courier, "Third rumour")]) == 0


def test_an_unsubscribe_link_stops_working_once_the_address_subscribes_again(
    conn: psycopg.Connection, db_url: str
) -> None:
    courier = add_feed(conn, "Daily Courier")
    sub_id = subscribe(conn)
    classify(conn, [add_item(conn, courier, "First rumour")])
    with SmtpSink() as smtp:
        relay(conn, smtp.port)
    old_path = smtp.messages[0]["List-Unsubscribe"].strip()[1:-1].removeprefix(PUBLIC)
    settings = Settings(database_url=SecretStr(db_url), secret_key=SecretStr(SECRET))
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert client.post(old_path).status_code == 200
        assert subscribe(conn) == sub_id  # the same rule, subscribed again
        # The old link (in a mail the subscriber kept, or someone forwarded) is dead now.
        assert client.get(old_path).status_code == 404
        assert client.post(old_path).status_code == 404
        assert subscriptions.get(conn, sub_id).unsubscribed_at is None  # type: ignore[union-attr]
        classify(conn, [add_item(conn, courier, "Second rumour")])
        with SmtpSink() as smtp:
            relay(conn, smtp.port)
        new_path = smtp.messages[0]["List-Unsubscribe"].strip()[1:-1].removeprefix(PUBLIC)
        assert new_path != old_path
        assert client.post(new_path).status_code == 200
    assert subscriptions.get(conn, sub_id).unsubscribed_at is not None  # type: ignore[union-attr]
    audit = conn.execute(
        "SELECT actor, action, details FROM audit_log WHERE action = 'alerts.unsubscribe'"
    ).fetchall()
    unsubscribed_by_link = ("desk@example.org", "alerts.unsubscribe", {"via": "unsubscribe link"})
    assert audit == [unsubscribed_by_link, unsubscribed_by_link]


def test_alerts_queued_while_smtp_is_down_are_each_delivered_exactly_once_when_it_is_back(
    conn: psycopg.Connection,
) -> None:
    courier = add_feed(conn, "Daily Courier")
    subscribe(conn)
    subscribe(conn, email="other@example.org", delivery="hourly")
    classify(conn, [add_item(conn, courier, f"Rumour {n}") for n in range(5)])
    port = free_port()
    later = datetime.now(UTC) + timedelta(hours=1)
    for _ in range(3):  # down for a while: every try fails and is recorded
        assert relay(conn, port, now=later) == 0
        conn.execute("UPDATE alert_outbox SET next_attempt_at = now() WHERE status = 'pending'")
    failed = outbox.entries(conn, failed_only=True)
    assert len(failed) == 6 and all(e.attempts == 3 and e.last_error for e in failed)
    with SmtpSink(port) as smtp:
        assert relay(conn, port, now=later) == 6
        assert relay(conn, port, now=later) == 0
    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert outbox.entries(conn, failed_only=True) == []


RELAY_LOOP = textwrap.dedent(
    """
    import sys, psycopg
    from tracker.pipeline.alerts import SmtpMailer, relay
    from tracker.config import Settings
    mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=int(sys.argv[2])))
    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        while relay(conn, mailer, "t@example.org", batch=3, public_url="http://t", secret_key="k"):
            pass
    """
)


def test_two_relay_processes_at_once_send_every_alert_exactly_once(
    conn: psycopg.Connection, db_url: str
) -> None:
    courier = add_feed(conn, "Daily Courier")
    for n in range(4):
        subscribe(conn, email=f"reader{n}@example.org")
    classify(conn, [add_item(conn, courier, f"Rumour {n}") for n in range(10)])
    with SmtpSink() as smtp:
        procs = [
            subprocess.Popen([sys.executable, "-c", RELAY_LOOP, db_url, str(smtp.port)])
            for _ in range(2)
        ]
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert outbox_statuses(conn) == {"sent": 40}


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so the relay does not record it."""


class DiesAfterSending:
    def __init__(self, inner: SmtpMailer) -> None:
        self.inner = inner

    def send(self, message: EmailMessage) -> None:
        self.inner.send(message)
        raise Killed


def test_a_relay_killed_between_send_and_commit_sends_again_with_the_same_message_id(
    conn: psycopg.Connection,
) -> None:
    """The documented outcome is at-least-once: the server accepted the message, the row was
    never marked sent, so after the lease expires the next relay sends it again, with the same
    Message-ID, which mail clients use to fold the two."""
    subscribe(conn)
    classify(conn, [add_item(conn, add_feed(conn, "Daily Courier"), "A rumour")])
    with SmtpSink() as smtp:
        with pytest.raises(Killed):
            alerts.relay(conn, DiesAfterSending(mailer(smtp.port)), "t@example.org")
        assert outbox_statuses(conn) == {"sending": 1}
        assert relay(conn, smtp.port) == 0  # the lease still holds it
        conn.execute("UPDATE alert_outbox SET lease_until = now() - interval '1 second'")
        assert relay(conn, smtp.port) == 1
    first, second = smtp.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert outbox_statuses(conn) == {"sent": 1}


LIMITS = alert_ops.OpsLimits(backlog=100, heartbeat_stale_s=300, feed_failing_h=6)


def test_a_silent_worker_a_backlog_and_a_failing_feed_alert_the_admins_once(
    conn: psycopg.Connection,
) -> None:
    add_user(conn, "ops@example.org", "admin")
    heartbeats.beat(conn, "classify", "worker-1")
    heartbeats.beat(conn, "fetch", "worker-2")
    conn.execute("UPDATE worker_heartbeats SET beat_at = now() - interval '10 minutes'")
    conn.execute("UPDATE worker_heartbeats SET beat_at = now() WHERE queue = 'fetch'")
    feed = add_feed(conn, "Flaky Wire")
    conn.execute(
        "UPDATE feeds SET failing_since = now() - interval '7 hours', last_error = 'HTTP 500'"
    )
    assert alert_ops.check(conn, {"queue fetch": 5000, "queue classify": 3}, LIMITS) == 3
    assert alert_ops.check(conn, {"queue fetch": 6000, "queue classify": 3}, LIMITS) == 0
    subjects = sorted(r[0] for r in conn.execute("SELECT subject FROM alert_outbox"))
    assert subjects == [
        "Feed failing: Flaky Wire",
        "No worker heartbeat on queue classify for 10 min",
        "Queue backlog: 5000 waiting on queue fetch",
    ]
    assert feed


def test_once_an_admin_subscribes_to_ops_alerts_only_ops_subscribers_get_them(
    conn: psycopg.Connection,
) -> None:
    add_user(conn, "ops@example.org", "admin")
    boss = add_user(conn, "boss@example.org", "admin")
    sub_id = subscribe(conn, email="boss@example.org", kind="ops", user_id=boss)
    assert outbox.queue_ops(conn, "e1", "Feed disabled: x", "body") == 1
    with SmtpSink() as smtp:
        relay(conn, smtp.port)
    assert [m["To"] for m in smtp.messages] == ["boss@example.org"]
    assert "List-Unsubscribe" in smtp.messages[0]
    subscriptions.unsubscribe(conn, sub_id)
    assert outbox.queue_ops(conn, "e2", "Feed disabled: y", "body") == 0
