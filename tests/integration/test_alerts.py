import threading

import psycopg

from tests.conftest import free_port
from tests.smtpsink import SmtpSink
from tracker.config import Settings
from tracker.pipeline.alerts import FileMailer, SmtpMailer, relay
from tracker.storage import outbox


def smtp_settings(port: int) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_s=2)


def pending(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status").fetchall()
    return {status: count for status, count in rows}


def test_an_outbox_row_is_sent_once_over_smtp(conn: psycopg.Connection) -> None:
    outbox.enqueue(conn, "k1", "a@example.org", "New rumour: x", "body")
    assert not outbox.enqueue(conn, "k1", "a@example.org", "New rumour: x", "body")
    with SmtpSink() as smtp:
        mailer = SmtpMailer(smtp_settings(smtp.port))
        assert relay(conn, mailer, "t@example.org") == 1
        assert relay(conn, mailer, "t@example.org") == 0
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"] == "New rumour: x"
    assert pending(conn) == {"sent": 1}


def test_alerts_wait_while_smtp_is_down_and_go_out_once_it_is_back(
    conn: psycopg.Connection,
) -> None:
    for i in range(3):
        outbox.enqueue(conn, f"k{i}", "a@example.org", f"s{i}", "body")
    port = free_port()
    mailer = SmtpMailer(smtp_settings(port))
    assert relay(conn, mailer, "t@example.org") == 0
    failed = conn.execute(
        "SELECT count(*) FROM alert_outbox WHERE status = 'pending' "
        "AND last_error IS NOT NULL AND attempts = 1"
    ).fetchone()
    assert failed == (3,)
    conn.execute("UPDATE alert_outbox SET next_attempt_at = now()")
    with SmtpSink(port) as sink:
        assert relay(conn, mailer, "t@example.org") == 3
    assert sorted(m["Subject"] for m in sink.messages) == ["s0", "s1", "s2"]
    assert pending(conn) == {"sent": 3}


def test_two_relays_at_once_send_every_alert_exactly_once(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(60):
            outbox.enqueue(conn, f"k{i}", "a@example.org", f"s{i}", "body")
    with SmtpSink() as smtp:
        mailer = SmtpMailer(smtp_settings(smtp.port))

        def run() -> None:
            with psycopg.connect(db_url, autocommit=True) as own:
                while relay(own, mailer, "t@example.org", batch=5):
                    pass

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    subjects = [m["Subject"] for m in smtp.messages]
    assert len(subjects) == 60 and len(set(subjects)) == 60


def test_without_smtp_alerts_are_written_as_files(conn: psycopg.Connection, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outbox.enqueue(conn, "k", "a@example.org", "New rumour: y", "body text")
    assert relay(conn, FileMailer(tmp_path / "mail"), "t@example.org") == 1
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    assert b"New rumour: y" in files[0].read_bytes()
    assert files[0].stat().st_mode & 0o777 == 0o600  # subscribers' addresses: ours alone


def test_a_row_that_cannot_be_sent_is_recorded_and_does_not_block_the_others(
    conn: psycopg.Connection,
) -> None:
    outbox.enqueue(conn, "bad", "a@example.org\x0bBcc: x@example.org", "s-bad", "body")
    outbox.enqueue(conn, "good", "b@example.org", "s-good", "body")
    with SmtpSink() as smtp:
        assert relay(conn, SmtpMailer(smtp_settings(smtp.port)), "t@example.org") == 1
    assert [m["Subject"] for m in smtp.messages] == ["s-good"]
    bad = conn.execute("SELECT status, last_error FROM alert_outbox WHERE dedupe_key = 'bad'")
    status, error = bad.fetchone()  # type: ignore[misc]
    assert status == "pending" and error
