"""The outbox's delivery guarantees with the relay the workers run, a real SMTP server and real
processes: bursts folded into one email, backoff, giving up, atomic writes, a killed relay."""

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from types import ModuleType

import psycopg
import pytest

from tests.conftest import Endpoints
from tests.factories import add_feed, add_item, add_story, analyst, suggest
from tests.smtpsink import SmtpSink, outbox_statuses, text_of
from tests.workerenv import smtp_port, worker_tasks
from tracker.config import Settings
from tracker.domain import Prediction
from tracker.pipeline import alert_fanout, alerts
from tracker.pipeline.alerts import SmtpMailer
from tracker.storage import items, outbox, pairs, subscriptions
from tracker.storage.subscriptions import Rule
from tracker.usecases import reviews as review_usecases

pytestmark = pytest.mark.integration


@pytest.fixture
def tasks(
    db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    with worker_tasks(db_url, services.broker_url, monkeypatch) as module:
        yield module


def add_items(conn: psycopg.Connection, titles: list[str], story: int | None = None) -> list[int]:
    """Items of these titles in a Daily Courier feed of their own."""
    feed = add_feed(conn, f"courier{len(titles)}-{titles[0][:3]}", title="Daily Courier")
    return [add_item(conn, feed, t, "Seen near the border.", story_id=story) for t in titles]


def classify_as_rumours(conn: psycopg.Connection, item_ids: list[int]) -> int:
    # What the classify stage does in its transaction once the model says "rumour".
    with conn.transaction():
        found = items.for_model(conn, item_ids)
        return alert_fanout.rumours(conn, [(r, Prediction("rumour", 0.9)) for r in found])


def test_a_burst_of_immediate_alerts_to_one_subscriber_goes_out_as_one_digest(
    conn: psycopg.Connection, tasks: ModuleType
) -> None:
    subscriptions.subscribe(conn, Rule(email="desk@example.org"))
    subscriptions.subscribe(conn, Rule(email="f16@example.org", keywords=["F-16"]))
    titles = [f"Rumour number {n}" for n in range(6)] + ["F-16s seen", "F-16s again"]
    assert classify_as_rumours(conn, add_items(conn, titles)) == 10
    with SmtpSink(smtp_port()) as smtp:
        assert tasks.relay_outbox() == 3
        assert tasks.relay_outbox() == 0
    by_recipient = sorted((m["To"], m["Subject"]) for m in smtp.messages)
    assert by_recipient == [
        ("desk@example.org", "Rumour Tracker: 8 new alerts at once"),
        ("f16@example.org", "New rumour: F-16s again"),  # two are not a burst (limit 5)
        ("f16@example.org", "New rumour: F-16s seen"),
    ]
    digest = next(m for m in smtp.messages if m["To"] == "desk@example.org")
    body = text_of(digest)
    assert all(title in body for title in titles)
    assert "List-Unsubscribe" in digest
    assert outbox_statuses(conn) == {"digested": 8, "sent": 3}


def test_bursts_can_be_turned_off(
    db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch, conn: psycopg.Connection
) -> None:
    with worker_tasks(db_url, services.broker_url, monkeypatch, ALERT_BURST="0") as tasks:
        subscriptions.subscribe(conn, Rule(email="desk@example.org"))
        classify_as_rumours(conn, add_items(conn, [f"Rumour {n}" for n in range(6)]))
        with SmtpSink(smtp_port()) as smtp:
            assert tasks.relay_outbox() == 6
    assert len(smtp.messages) == 6


def test_two_relays_folding_bursts_at_once_still_deliver_every_alert_exactly_once(
    db_url: str, conn: psycopg.Connection
) -> None:
    readers = [f"reader{n}@example.org" for n in range(4)]
    for email in readers:
        subscriptions.subscribe(conn, Rule(email=email))
    titles = [f"Rumour {n:02d}" for n in range(12)]
    classify_as_rumours(conn, add_items(conn, titles))
    with SmtpSink() as smtp:
        mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=smtp.port))

        def run() -> None:
            with psycopg.connect(db_url, autocommit=True) as own:
                while alerts.relay(own, mailer, "t@example.org", batch=2, burst=3):
                    pass

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    for email in readers:
        # Each alert's title stands on a line of its own, in a digest as in a single alert
        # (whose headline, "New rumour: ...", repeats it: a reader whose burst the other relay
        # held in part gets the rest one by one).
        lines = [
            line.strip()
            for m in smtp.messages
            if m["To"] == email
            for line in text_of(m).splitlines()
        ]
        assert sorted(line for line in lines if line in titles) == titles, email
    assert set(outbox_statuses(conn)) <= {"sent", "digested"}


def test_failed_sends_back_off_exponentially_and_are_given_up_visibly(
    conn: psycopg.Connection, tasks: ModuleType
) -> None:
    outbox.enqueue(conn, "k", "a@example.org", "Backing off", "body")
    waits = []
    for _ in range(3):
        assert tasks.relay_outbox() == 0  # SMTP is down
        (entry,) = outbox.entries(conn, failed_only=True)
        waits.append((entry.next_attempt_at - datetime.now(UTC)).total_seconds())
        conn.execute("UPDATE alert_outbox SET next_attempt_at = now()")
    # 30 s x 2^attempts, with +-20 % jitter: about 60, 120, 240 s.
    assert 45 < waits[0] < 75 and 90 < waits[1] < 150 and 180 < waits[2] < 300
    conn.execute("UPDATE alert_outbox SET attempts = %s", (alerts.MAX_ATTEMPTS - 1,))
    assert tasks.relay_outbox() == 0
    (entry,) = outbox.entries(conn, failed_only=True)
    assert (entry.status, entry.attempts) == ("dead", alerts.MAX_ATTEMPTS)
    assert entry.last_error and "ConnectionRefusedError" in entry.last_error
    conn.execute("UPDATE alert_outbox SET next_attempt_at = now()")
    assert tasks.relay_outbox() == 0  # a given-up row is not tried again
    assert outbox.entries(conn)[0].attempts == alerts.MAX_ATTEMPTS


class Crash(Exception):
    pass


def test_an_alert_exists_exactly_when_its_event_commits(conn: psycopg.Connection) -> None:
    story = add_story(conn, "F-16s")
    (rumour, clarification) = add_items(conn, ["F-16s over Ukraine", "Ministry: false"], story)
    subscriptions.subscribe(conn, Rule(email="desk@example.org"))
    subscriptions.subscribe(conn, Rule(email="desk@example.org", kind="story", story_id=story))
    with pytest.raises(Crash), conn.transaction():
        found = items.for_model(conn, [rumour])
        assert alert_fanout.rumours(conn, [(found[0], Prediction("rumour", 0.9))]) == 1
        assert suggest(conn, rumour, clarification, 0.9)
        raise Crash  # the stage dies before its commit: no pair, so no alert either
    assert outbox_statuses(conn) == {} and pairs.list_pairs(conn) == []
    with conn.transaction():
        suggest(conn, rumour, clarification, 0.9)
    (pair,) = pairs.list_pairs(conn)
    with pytest.raises(Crash), conn.transaction():
        review_usecases.decide(conn, pair.id, analyst(conn), "confirm", None, datetime.now(UTC))
        raise Crash
    assert pairs.list_pairs(conn)[0].status == "suggested"
    kinds = [r[0] for r in conn.execute("SELECT kind FROM alert_outbox").fetchall()]
    assert kinds == ["clarification_suggested"]


KILLED_AFTER_SENDING = textwrap.dedent(
    """
    import os, signal, sys, psycopg
    from tracker.pipeline.alerts import SmtpMailer, relay
    from tracker.config import Settings

    class KilledAfterSending(SmtpMailer):
        def send(self, message):
            super().send(message)
            os.kill(os.getpid(), signal.SIGKILL)  # the server has it; the row is not marked

    mailer = KilledAfterSending(Settings(smtp_host="127.0.0.1", smtp_port=int(sys.argv[2])))
    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        relay(conn, mailer, "t@example.org")
    """
)


def test_a_relay_process_killed_after_sending_resends_with_the_same_message_id_later(
    conn: psycopg.Connection, db_url: str
) -> None:
    subscriptions.subscribe(conn, Rule(email="desk@example.org"))
    classify_as_rumours(conn, add_items(conn, ["A rumour"]))
    with SmtpSink() as smtp:
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_AFTER_SENDING, db_url, str(smtp.port)],
            timeout=120,
            check=False,
        )
        assert killed.returncode == -signal.SIGKILL
        assert outbox_statuses(conn) == {"sending": 1}
        mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=smtp.port))
        assert alerts.relay(conn, mailer, "t@example.org") == 0  # its lease still holds
        conn.execute("UPDATE alert_outbox SET lease_until = now() - interval '1 second'")
        assert alerts.relay(conn, mailer, "t@example.org") == 1
    first, second = smtp.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert outbox_statuses(conn) == {"sent": 1}


class CutOffAfterSending:
    """Sends through `mailer`, then has the server end the relay's connection: the database
    gone between the SMTP server's 250 and the row marked sent."""

    def __init__(self, mailer: alerts.Mailer, db_url: str, relay_pid: int) -> None:
        self.mailer, self.db_url, self.relay_pid = mailer, db_url, relay_pid

    def send(self, message: EmailMessage) -> None:
        self.mailer.send(message)
        with psycopg.connect(self.db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (self.relay_pid,))


def test_a_batch_cut_off_by_the_database_is_recorded_once_it_is_back_and_nothing_is_resent(
    db_url: str, conn: psycopg.Connection
) -> None:
    for n in range(3):
        outbox.enqueue(conn, f"k{n}", "desk@example.org", f"Alert {n}", "body")
    with SmtpSink() as smtp:
        mailer = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=smtp.port))
        with psycopg.connect(db_url, autocommit=True) as relay:
            cut = CutOffAfterSending(mailer, db_url, relay.info.backend_pid)
            with pytest.raises(alerts.BatchInterrupted) as interrupted:
                alerts.relay(relay, cut, "t@example.org")
        assert len(interrupted.value.sent) == 1 and len(interrupted.value.unsent) == 2
        with psycopg.connect(db_url, autocommit=True) as back:
            alerts.settle_interrupted(back, interrupted.value)
            assert outbox_statuses(back) == {"sent": 1, "pending": 2}
            # The released rows go now, not after a lease; the sent one never again.
            assert alerts.relay(back, mailer, "t@example.org") == 2
            back.execute("UPDATE alert_outbox SET lease_until = now() - interval '1 hour'")
            assert alerts.relay(back, mailer, "t@example.org") == 0
    assert sorted(m["Subject"] for m in smtp.messages) == ["Alert 0", "Alert 1", "Alert 2"]
