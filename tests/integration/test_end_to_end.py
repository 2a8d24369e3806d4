"""The whole pipeline with real processes: beat and a Celery worker against the broker, feeds on
a loopback HTTP server, PostgreSQL, and a real SMTP server receiving the alert."""

import json
import time
from pathlib import Path

import psycopg

from tests.conftest import Endpoints
from tests.feedserver import FeedServer, Route
from tests.smtpsink import SmtpSink
from tracker.demo import FEEDS_DIR
from tracker.pipeline.model_registry import ensure_models
from tracker.runtime import supervisor
from tracker.storage import feeds, outbox, pairs

DEADLINE_S = 120


def wait_for(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_a_rumour_is_paired_with_its_clarification_and_alerted_by_email(
    conn: psycopg.Connection, db_url: str, services: Endpoints, tmp_path: Path
) -> None:
    ensure_models(conn)
    with FeedServer() as server, SmtpSink() as smtp:
        for name, kind in (("daily-courier", "media"), ("ministry-of-defence", "official")):
            server.routes[f"/{name}.xml"] = Route((FEEDS_DIR / f"{name}.xml").read_bytes())
            feeds.add(conn, feeds.NewFeed(server.url(f"/{name}.xml"), kind))
        outbox.subscribe(conn, "desk@newsroom.example", ["F-16"], 0.5)
        env = supervisor.child_env(
            db_url, services.broker_url, tmp_path, "http://t.example", ["127.0.0.0/8"], None
        )
        env.update(
            {
                "TRACKER_SMTP_HOST": "127.0.0.1",
                "TRACKER_SMTP_PORT": str(smtp.port),
                "TRACKER_DISPATCH_EVERY_S": "1",
                "TRACKER_RELAY_EVERY_S": "1",
            }
        )
        roles = [r for r in supervisor.roles(tmp_path, "127.0.0.1", 0) if r.name != "web"]
        sup = supervisor.Supervisor(roles, env)
        sup.start()
        try:
            wait_for(
                lambda: any("F-16" in p.rumour_title for p in pairs.list_pairs(conn)),
                "the F-16 pair",
            )
            wait_for(lambda: smtp.messages, "the alert email")
        finally:
            sup.stop()
        found = pairs.list_pairs(conn)
        best = found[0]
        assert "F-16" in best.rumour_title and best.rumour_kind == "media"
        assert best.clarification_kind == "official" and "false" in best.clarification_title
        mail = smtp.messages[0]
        assert mail["To"] == "desk@newsroom.example"
        assert mail["Subject"].startswith("New rumour:") and "F-16" in mail["Subject"]
        assert mail["Message-ID"].startswith("<alert-")
        status = conn.execute("SELECT status FROM alert_outbox").fetchall()
        assert {row[0] for row in status} == {"sent"}
        assert json.dumps(best.explanation)  # the explanation is stored with the pair
