import json
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.conftest import run_tracker
from tests.factories import add_feed, add_item, add_pair
from tracker.domain import FEED_KINDS


def test_feeds_added_on_the_command_line_are_listed_as_json(cli_env: dict[str, str]) -> None:
    added = run_tracker(
        "feeds", "add", "https://mod.example/rss", "--kind", "official", env=cli_env
    )
    assert added.returncode == 0, added.stderr
    assert "added: feed 1" in added.stdout
    again = run_tracker(
        "feeds", "add", "https://mod.example/rss", "--kind", "official", env=cli_env
    )
    assert "already registered" in again.stdout
    listed = json.loads(run_tracker("feeds", "list", "--json", env=cli_env).stdout)
    assert [(f["url"], f["kind"], f["status"]) for f in listed] == [
        ("https://mod.example/rss", "official", "new")
    ]


def test_a_bad_feed_kind_or_url_is_a_clear_error(cli_env: dict[str, str]) -> None:
    bad_kind = run_tracker("feeds", "add", "https://x.example/rss", "--kind", "blog", env=cli_env)
    # A bad choice is a usage error (exit code 2) naming every choice.
    assert bad_kind.returncode == 2 and "'blog' is not one of" in bad_kind.stderr
    assert all(kind in bad_kind.stderr for kind in FEED_KINDS)
    banana = run_tracker("pairs", "list", "--status", "banana", env=cli_env)
    assert banana.returncode == 2 and "'banana' is not one of suggested," in banana.stderr
    bad_url = run_tracker("feeds", "add", "file:///etc/passwd", env=cli_env)
    assert bad_url.returncode == 1 and "must start with http" in bad_url.stderr


def test_pairs_are_listed_as_json_with_titles_score_and_status(
    cli_env: dict[str, str], conn: psycopg.Connection
) -> None:
    feed = add_feed(conn, "a", titled=False, url="http://a.example")
    rumour, clarification = (
        add_item(conn, feed, title, language=None, seen_at=None, dedupe_key=key)
        for key, title in (("r", "Rumour title"), ("c", "Clarification title"))
    )
    add_pair(conn, rumour, clarification, 0.75, created_at=None, terms=None)
    result = run_tracker("pairs", "list", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    [pair] = json.loads(result.stdout)
    assert pair["rumour"]["title"] == "Rumour title"
    assert pair["clarification"]["title"] == "Clarification title"
    assert (pair["score"], pair["status"]) == (0.75, "suggested")


def test_config_prints_settings_with_secrets_masked(cli_env: dict[str, str]) -> None:
    result = run_tracker("config", env={**cli_env, "TRACKER_SECRET_KEY": "do-not-print-this-key"})
    shown = json.loads(result.stdout)
    assert shown["secret_key"] == "***" and shown["database_url"] == "***"
    assert "do-not-print-this-key" not in result.stdout


def test_commands_refuse_an_unmigrated_database_and_say_what_to_run(
    cli_env: dict[str, str], unmigrated_db_url: str
) -> None:
    empty = {**cli_env, "TRACKER_DATABASE_URL": unmigrated_db_url}
    refused = run_tracker("feeds", "list", env=empty)
    assert refused.returncode == 1
    assert "run `tracker db upgrade`" in refused.stderr
    assert run_tracker("db", "upgrade", env=empty).returncode == 0
    assert run_tracker("feeds", "list", env=empty).returncode == 0


def test_a_worker_refuses_to_start_on_an_unmigrated_database(
    cli_env: dict[str, str], unmigrated_db_url: str
) -> None:
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-P", "solo"],
        env={**cli_env, "TRACKER_DATABASE_URL": unmigrated_db_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode != 0
    assert "run `tracker db upgrade`" in worker.stdout + worker.stderr


def test_up_says_the_port_is_taken_before_it_starts_anything(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {**cli_env, "TRACKER_DATA_DIR": str(tmp_path / "data")}
        refused = run_tracker("up", "--port", port, env=env)
    assert refused.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in refused.stderr
    assert "--port or TRACKER_WEB_PORT" in refused.stderr
    assert not (tmp_path / "data").exists(), "nothing was started or created"


def test_a_global_option_after_the_command_gets_a_hint(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    late = run_tracker("feeds", "list", "--data-dir", str(tmp_path), env=cli_env)
    assert late.returncode == 2
    assert "put it before the command, as in `tracker --data-dir DIR feeds ...`" in late.stderr
