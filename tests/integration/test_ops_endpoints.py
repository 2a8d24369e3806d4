"""/readyz and /metrics on a real PostgreSQL and Redis; metrics written by real worker
processes and added up by a real web server process (prometheus_client multiprocess mode)."""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.conftest import Endpoints, free_port, with_database
from tracker import demo
from tracker.config import Settings
from tracker.pipeline.model_registry import ensure_models
from tracker.storage import api_tokens, db, feeds, outbox, users
from tracker.usecases import accounts
from tracker.web.app import create_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-" + "x" * 30
NAMED_METRICS = {
    "rumour_tracker_items_ingested",
    "rumour_tracker_fetches",
    "rumour_tracker_queue_backlog",
    "rumour_tracker_classification_seconds",
    "rumour_tracker_items_classified",
    "rumour_tracker_pairs_suggested",
    "rumour_tracker_pair_decisions",
    "rumour_tracker_alerts",
}


def settings(db_url: str, broker_url: str, **extra: Any) -> Settings:
    return Settings(
        database_url=SecretStr(db_url),
        broker_url=SecretStr(broker_url),
        secret_key=SecretStr("s" * 40),
        **extra,
    )


@pytest.fixture
def other_db_url(services: Endpoints) -> Iterator[str]:
    """A second migrated database of our own (a replica stand-in, or one to take away)."""
    name = f"rt_ops_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(services.database_url, name)
    db.upgrade(url)
    yield url
    drop_database(services.database_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unreachable_broker() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


# --- /readyz -------------------------------------------------------------------------------


def test_readyz_is_ok_when_the_database_is_at_head_and_the_broker_answers(
    db_url: str, services: Endpoints
) -> None:
    with TestClient(create_app(settings(db_url, services.broker_url))) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_is_503_with_the_reason_when_the_broker_is_unreachable(db_url: str) -> None:
    with TestClient(create_app(settings(db_url, unreachable_broker()))) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200, "liveness does not depend on Redis"
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert list(body["problems"]) == ["broker"]
    assert body["problems"]["broker"].startswith("unreachable")


def test_readyz_is_503_when_the_schema_is_behind_the_code(db_url: str, services: Endpoints) -> None:
    head = db.head_revision()
    with TestClient(create_app(settings(db_url, services.broker_url))) as client:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0001'")
        try:
            response = client.get("/readyz")
        finally:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("UPDATE alembic_version SET version_num = %s", (head,))
    assert response.status_code == 503
    assert response.json()["problems"] == {
        "database": f"schema at revision 0001, this code needs {head}"
    }


def test_readyz_is_503_when_the_database_goes_away(other_db_url: str, services: Endpoints) -> None:
    with TestClient(create_app(settings(other_db_url, services.broker_url))) as client:
        assert client.get("/readyz").status_code == 200
        # The path, not the last "/": an embedded URL names its socket directory in the query.
        drop_database(services.database_url, urlsplit(other_db_url).path.lstrip("/"))
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 503
    assert response.json()["problems"]["database"].startswith("unreachable")


def test_readyz_checks_the_read_replica_too(db_url: str, services: Endpoints) -> None:
    replica = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    app = create_app(settings(db_url, services.broker_url, database_read_url=SecretStr(replica)))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["problems"]) == ["database_read"]


def test_read_only_lists_come_from_the_read_url(
    db_url: str, other_db_url: str, services: Endpoints
) -> None:
    """The replica stand-in holds a feed the primary does not; logins stay on the primary."""
    with psycopg.connect(other_db_url, autocommit=True) as conn:
        feeds.add(conn, feeds.NewFeed("http://replica.example/rss", "media", "Replica", "en"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        digest = accounts.hash_password("x" * 20)
        user = users.create(conn, "ana@newsroom.example", digest, "viewer")
        token = accounts.new_api_token()
        api_tokens.create(conn, user.id, "test", "viewer", accounts.token_digest(token))
    read = SecretStr(other_db_url)
    app = create_app(settings(db_url, services.broker_url, database_read_url=read))
    with TestClient(app) as client:
        listed = client.get("/api/v1/feeds", headers={"authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    assert [f["title"] for f in listed.json()] == ["Replica"]


# --- /metrics access ---------------------------------------------------------------------------


def test_metrics_are_off_without_a_token_setting(db_url: str, services: Endpoints) -> None:
    with TestClient(create_app(settings(db_url, services.broker_url))) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == (
            404
        )


def test_metrics_need_the_bearer_token(db_url: str, services: Endpoints) -> None:
    app = create_app(settings(db_url, services.broker_url, metrics_token=SecretStr(TOKEN)))
    with TestClient(app) as client:
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": TOKEN},
            {"authorization": f"Token {TOKEN}"},
        ):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == "Bearer"
        response = client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert {f.name for f in text_string_to_metric_families(response.text)} >= NAMED_METRICS


# --- metrics from worker processes, added up ---------------------------------------------------


def purge_queues(broker_url: str) -> None:
    with Connection(broker_url) as conn:
        for queue in ("fetch", "classify"):
            conn.default_channel.queue_purge(queue)


def process_env(db_url: str, broker_url: str, metrics_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "TRACKER_DATABASE_URL": db_url,
            "TRACKER_BROKER_URL": broker_url,
            "TRACKER_SECRET_KEY": "w" * 40,
            "TRACKER_SMTP_HOST": "127.0.0.1",
            # Nothing listens there: every alert fails and is counted as failed.
            "TRACKER_SMTP_PORT": str(free_port()),
            "TRACKER_SMTP_TIMEOUT_S": "2",
            "TRACKER_FETCH_ALLOW_NETWORKS": json.dumps(["127.0.0.1/32"]),
            "TRACKER_METRICS_TOKEN": TOKEN,
        }
    )
    return env


def run_worker(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.ops_worker", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


class WebProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "--factory", "tracker.web.app:create_app"]
        self.proc = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            env=env,
            cwd=REPO,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.url("/healthz"), timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError("the web process did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = httpx.get(
            self.url("/metrics"), headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert response.status_code == 200, response.text
        families = list(text_string_to_metric_families(response.text))
        assert {f.name for f in families} >= NAMED_METRICS
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def count(conn: psycopg.Connection, statement: str) -> int:
    row = conn.execute(statement).fetchone()
    assert row is not None
    return int(row[0])


def test_metrics_add_up_a_pipeline_run_across_worker_processes(
    conn: psycopg.Connection, db_url: str, services: Endpoints, tmp_path: Path
) -> None:
    ensure_models(conn)
    server = demo.serve(0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for f in demo.feeds(base):
            feeds.add(conn, feeds.NewFeed(f.url, f.kind, f.title, f.language))
        outbox.subscribe(conn, "ana@newsroom.example", [], 0.5)
        purge_queues(services.broker_url)
        env = process_env(db_url, services.broker_url, tmp_path / "metrics")
        web = WebProcess(env)
        try:
            run_worker(env, "fetch", "3")
            after_one = web.scrape()
            run_worker(env, "fetch", "3")
            run_worker(env, "classify")
            after_all = web.scrape()
        finally:
            web.stop()
    finally:
        server.shutdown()
    # Each fetch process refreshed three feeds; the web process adds both up.
    assert total(after_one, "rumour_tracker_fetches_total") == 3
    assert total(after_all, "rumour_tracker_fetches_total") == 6
    outcomes = {
        dict(labels)["outcome"]
        for (name, labels), value in after_all.items()
        if "fetches" in name and value
    }
    assert outcomes and outcomes <= {"ok", "ok_bozo"}
    items = count(conn, "SELECT count(*) FROM items")
    assert items > 0
    assert total(after_all, "rumour_tracker_items_ingested_total") == items
    assert total(after_all, "rumour_tracker_items_classified_total") == count(
        conn, "SELECT count(*) FROM classifications"
    )
    assert total(after_all, "rumour_tracker_classification_seconds_count") == 1
    pairs = count(conn, "SELECT count(*) FROM pairs")
    assert pairs > 0
    assert total(after_all, "rumour_tracker_pairs_suggested_total") == pairs
    failed = count(conn, "SELECT count(*) FROM alert_outbox WHERE attempts > 0")
    assert failed > 0
    assert after_all[("rumour_tracker_alerts_total", (("outcome", "failed"),))] == failed
    assert after_all[("rumour_tracker_alerts_total", (("outcome", "sent"),))] == 0
    # Read from Redis at scrape time: a classify_items per fetched feed, and the pair_items
    # that classify_items queued; nothing consumes them in this test.
    fed = count(conn, "SELECT count(DISTINCT feed_id) FROM items")
    backlog = {dict(labels)["queue"]: v for (n, labels), v in after_all.items() if "backlog" in n}
    assert backlog == {"fetch": 0, "classify": fed + 1}
