import json
import os
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import Endpoints


def tracker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(db_url: str, services: Endpoints) -> dict[str, str]:
    return {**os.environ, "TRACKER_DATABASE_URL": db_url, "TRACKER_BROKER_URL": services.broker_url}


def test_feeds_added_on_the_command_line_are_listed_as_json(env: dict[str, str]) -> None:
    added = tracker("feeds", "add", "https://mod.example/rss", "--kind", "official", env=env)
    assert added.returncode == 0, added.stderr
    assert "added: feed 1" in added.stdout
    again = tracker("feeds", "add", "https://mod.example/rss", "--kind", "official", env=env)
    assert "already registered" in again.stdout
    listed = json.loads(tracker("feeds", "list", "--json", env=env).stdout)
    assert [(f["url"], f["kind"], f["status"]) for f in listed] == [
        ("https://mod.example/rss", "official", "new")
    ]


def test_a_bad_feed_kind_or_url_is_a_clear_error(env: dict[str, str]) -> None:
    bad_kind = tracker("feeds", "add", "https://x.example/rss", "--kind", "blog", env=env)
    assert bad_kind.returncode == 1
    assert "--kind must be one of official, factcheck, media, social, other" in bad_kind.stderr
    bad_url = tracker("feeds", "add", "file:///etc/passwd", env=env)
    assert bad_url.returncode == 1 and "must start with http" in bad_url.stderr


def test_pairs_are_listed_as_json_with_titles_score_and_status(
    env: dict[str, str], conn: psycopg.Connection
) -> None:
    feed = conn.execute(
        "INSERT INTO feeds (url, kind) VALUES ('http://a.example', 'media') RETURNING id"
    ).fetchone()
    assert feed is not None
    ids = [
        conn.execute(
            "INSERT INTO items (feed_id, dedupe_key, title, content_hash) "
            "VALUES (%s, %s, %s, 'h') RETURNING id",
            (feed[0], key, title),
        ).fetchone()[0]  # type: ignore[index]
        for key, title in (("r", "Rumour title"), ("c", "Clarification title"))
    ]
    conn.execute(
        "INSERT INTO pairs (rumour_id, clarification_id, score, scorer_version) "
        "VALUES (%s, %s, 0.75, 'test')",
        ids,
    )
    result = tracker("pairs", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    [pair] = json.loads(result.stdout)
    assert pair["rumour"]["title"] == "Rumour title"
    assert pair["clarification"]["title"] == "Clarification title"
    assert (pair["score"], pair["status"]) == (0.75, "suggested")


def test_config_prints_settings_with_secrets_masked(env: dict[str, str]) -> None:
    result = tracker("config", env={**env, "TRACKER_SECRET_KEY": "do-not-print-this-key"})
    shown = json.loads(result.stdout)
    assert shown["secret_key"] == "***" and shown["database_url"] == "***"
    assert "do-not-print-this-key" not in result.stdout


def test_commands_refuse_an_unmigrated_database_and_say_what_to_run(
    env: dict[str, str], unmigrated_db_url: str
) -> None:
    empty = {**env, "TRACKER_DATABASE_URL": unmigrated_db_url}
    refused = tracker("feeds", "list", env=empty)
    assert refused.returncode == 1
    assert "run `tracker db upgrade`" in refused.stderr
    assert tracker("db", "upgrade", env=empty).returncode == 0
    assert tracker("feeds", "list", env=empty).returncode == 0


def test_a_worker_refuses_to_start_on_an_unmigrated_database(
    env: dict[str, str], unmigrated_db_url: str
) -> None:
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-P", "solo"],
        env={**env, "TRACKER_DATABASE_URL": unmigrated_db_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode != 0
    assert "run `tracker db upgrade`" in worker.stdout + worker.stderr
