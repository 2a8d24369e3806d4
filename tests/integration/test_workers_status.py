"""`tracker workers status` against a real broker and a real Celery worker process."""

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from tests.conftest import free_port, run_tracker
from tracker.storage import heartbeats


def status(env: dict[str, str]) -> tuple[int, dict[str, list[dict[str, object]]]]:
    done = run_tracker("workers", "status", "--json", "--timeout", "2", env=env)
    return done.returncode, json.loads(done.stdout)


def test_no_worker_answering_exits_1_and_still_shows_heartbeats(
    cli_env: dict[str, str], conn: psycopg.Connection
) -> None:
    heartbeats.beat(conn, "fetch", "fetch@gone-host")
    code, report = status(cli_env)
    assert code == 1
    assert report["workers"] == []
    assert [(b["queue"], b["hostname"]) for b in report["heartbeats"]] == [
        ("fetch", "fetch@gone-host")
    ]


def test_a_running_worker_answers_the_ping_and_serves_its_metrics(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **cli_env,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "TRACKER_WORKER_METRICS_PORT": str(port),
    }
    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-P", "solo"]
    worker = subprocess.Popen(
        [*argv, "-Q", "fetch", "-n", "status-probe@%h", "--loglevel", "WARNING"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        names: list[object] = []
        while time.monotonic() < deadline and not names:
            code, report = status(cli_env)
            names = [w["name"] for w in report["workers"]]
        assert code == 0
        assert len(names) == 1 and str(names[0]).startswith("status-probe@")
        assert report["workers"][0]["reply"] == "pong"
        served = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "rumour_tracker_fetches_total" in served
        assert "rumour_tracker_classification_seconds_bucket" in served
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def test_an_unreachable_broker_is_a_clear_error(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "TRACKER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = run_tracker("workers", "status", env=env)
    assert done.returncode == 1
    assert "cannot reach the broker: OperationalError" in done.stderr
