"""`tracker backup` and `tracker restore`: a backup taken while `tracker up` and its workers run
restores into a fresh data dir equal table by table, serving the same review queue to the same
session; a backup made at the oldest schema restores and is upgraded; what must be refused is."""

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from psycopg import sql

from tests.conftest import free_port, run_tracker
from tests.factories import CSRF_INPUT, log_in
from tests.integration.test_up import DEADLINE_S, Up, clean_env, cli, embedded_only
from tracker.runtime import embedded
from tracker.storage import backups, db

# Tables whose every row must come back as it was; the others (feeds' poll times, heartbeats,
# sessions' last use) change while a tracker runs, and are compared by their counts.
STABLE = (
    "items",
    "classifications",
    "pairing_candidates",
    "pairs",
    "reviews",
    "stories",
    "alert_subscriptions",
    "models",
    "users",
    "audit_log",
    "alembic_version",
)
QUEUE_PAIRS = re.compile(r'id="pair-(\d+)"')


def digest(url: str, table: str) -> str:
    with psycopg.connect(url) as conn:
        query = sql.SQL(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(md5(t::text), '' "
            "ORDER BY md5(t::text))), '') FROM {} t"
        ).format(sql.Identifier(table))
        row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def snapshot(data_dir: Path) -> dict[str, str]:
    with embedded.postgres_server(data_dir) as url:
        return {table: digest(url, table) for table in STABLE}


def wait_for_quiet_pairs(data_dir: Path, up: Up) -> list[dict[str, object]]:
    """The demo's pairs once their number has not changed for 10 s."""
    deadline = time.monotonic() + DEADLINE_S
    last: list[dict[str, object]] = []
    steady_since = time.monotonic()
    while True:
        found: list[dict[str, object]] = json.loads(cli(data_dir, "pairs", "list", "--json"))
        if len(found) != len(last) or not found:
            last, steady_since = found, time.monotonic()
        elif time.monotonic() - steady_since > 10:
            return found
        assert time.monotonic() < deadline, up.output()[-3000:]
        time.sleep(1)


@pytest.fixture
def dirs() -> Iterator[tuple[Path, Path, Path]]:
    tag = f"{time.monotonic_ns() % 10**8:08d}"
    # Short paths: unix socket paths are limited to about 100 bytes.
    made = tuple(Path(f"/tmp/rt-bk-{tag}-{name}") for name in ("a", "b", "c"))  # noqa: S108
    yield made  # type: ignore[misc]
    for path in made:
        shutil.rmtree(path, ignore_errors=True)
        for log in path.parent.glob(f"{path.name}.*.log"):
            log.unlink()


@embedded_only
def test_a_backup_taken_while_running_restores_equal_and_serves_the_same_queue(
    dirs: tuple[Path, Path, Path],
) -> None:
    source, backup_dir, target = dirs
    up = Up(source, free_port(), free_port(), 1)
    try:
        password = re.findall(r"admin@localhost / (\S+)", up.wait_until_up())[0]
        pairs = wait_for_quiet_pairs(source, up)
        cli(source, "alerts", "subscribe", "desk@newsroom.example", "--keyword", "F-16")
        browser = httpx.Client(base_url=up.url, timeout=10)
        page = log_in(browser, "admin@localhost", password, follow_redirects=True)
        token = CSRF_INPUT.findall(page.text)[0]
        new_password = "a-long-new-password-42"
        browser.post(
            "/account/password",
            data={
                "csrf_token": token,
                "current_password": password,
                "new_password": new_password,
                "new_password_again": new_password,
            },
        )
        token = CSRF_INPUT.findall(browser.get("/").text)[0]
        decided = browser.post(
            f"/pairs/{pairs[-1]['id']}/decision",
            data={"csrf_token": token, "decision": "reject", "reason": "different event"},
        )
        assert decided.status_code in (200, 303), decided.text
        queue = QUEUE_PAIRS.findall(browser.get("/").text)
        assert queue
        # Taken while the web process, both workers and beat run.
        made = cli(source, "backup", str(backup_dir))
        assert "backed up in" in made and "MB dump" in made
        assert up.proc.poll() is None
    finally:
        assert up.ctrl_c() == 0, up.output()[-3000:]
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["tables"]["pairs"] == len(pairs) and manifest["secret_key"] is True
    assert manifest["tables"]["reviews"] == 1 and manifest["tables"]["models"] >= 2
    assert (backup_dir.stat().st_mode & 0o777) == 0o700
    assert all((f.stat().st_mode & 0o777) == 0o600 for f in backup_dir.iterdir())
    before = snapshot(source)

    restored = cli(target, "restore", str(backup_dir))
    assert "as counted at the backup" in restored
    assert (target / "secret_key").read_bytes() == (source / "secret_key").read_bytes()
    assert (target / "secret_key").stat().st_mode & 0o777 == 0o600
    assert snapshot(target) == before
    with embedded.postgres_server(target) as url, psycopg.connect(url) as conn:
        assert backups.table_counts(conn) == manifest["tables"]

    again = Up(target, free_port(), free_port(), 2)
    try:
        assert "log in with your existing account" in again.wait_until_up()
        # The same browser session, signed with the restored key and kept in the restored
        # sessions table, sees the same queue in the same order.
        browser.base_url = httpx.URL(again.url)
        assert QUEUE_PAIRS.findall(browser.get("/").text) == queue
    finally:
        browser.close()
        assert again.ctrl_c() == 0, again.output()[-3000:]


def test_a_backup_of_the_oldest_schema_restores_and_is_upgraded(
    unmigrated_db_url: str, tmp_path: Path
) -> None:
    command.upgrade(db._alembic_config(unmigrated_db_url), "0001")
    with psycopg.connect(unmigrated_db_url, autocommit=True) as conn:
        feed = conn.execute(
            "INSERT INTO feeds (url, kind) VALUES ('https://mod.example/rss', 'official') "
            "RETURNING id"
        ).fetchone()
        assert feed is not None
        conn.execute(
            "INSERT INTO items (feed_id, dedupe_key, title, content_hash) "
            "VALUES (%s, 'k', 'Ministry statement on F-16s', 'h')",
            feed,
        )
    env = {**clean_env(), "TRACKER_DATABASE_URL": unmigrated_db_url}
    made = run_tracker("backup", str(tmp_path / "old"), env=env)
    assert made.returncode == 0, made.stderr
    assert json.loads((tmp_path / "old" / "manifest.json").read_text())["schema_revision"] == (
        "0001"
    )
    # Into the same database, emptied: as into a new one.
    with psycopg.connect(unmigrated_db_url, autocommit=True) as conn:
        backups.clear(conn)
    restored = run_tracker("restore", str(tmp_path / "old"), env=env)
    assert restored.returncode == 0, restored.stderr
    assert f"upgrading the schema from 0001 to {db.head_revision()}" in restored.stdout
    checked = run_tracker("db", "check", env=env)
    assert checked.returncode == 0 and "matches this tracker" in checked.stdout
    with psycopg.connect(unmigrated_db_url) as conn:
        row = conn.execute("SELECT title, language FROM items").fetchone()
        # Planner statistics refreshed: a restored table has none (reltuples -1) until then.
        analysed = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'items'").fetchone()
    assert row == ("Ministry statement on F-16s", None)
    assert analysed == (1,)


def test_restore_refuses_a_newer_backup_a_used_database_and_a_running_tracker(
    cli_env: dict[str, str], conn: psycopg.Connection, tmp_path: Path
) -> None:
    backup_dir = tmp_path / "b"
    assert run_tracker("backup", str(backup_dir), env=cli_env).returncode == 0
    again = run_tracker("backup", str(backup_dir), env=cli_env)
    assert again.returncode == 1 and "exists and is not an empty directory" in again.stderr

    # The database holds the schema: a restore must be told to replace it.
    used = run_tracker("restore", str(backup_dir), env=cli_env)
    assert used.returncode == 1 and "--replace" in used.stderr

    conn.execute("INSERT INTO worker_heartbeats (queue, hostname) VALUES ('fetch', 'w1@host')")
    running = run_tracker("restore", str(backup_dir), "--replace", env=cli_env)
    assert running.returncode == 1 and "worker w1@host last seen" in running.stderr
    conn.execute("DELETE FROM worker_heartbeats")

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "database.dump").write_bytes((backup_dir / "database.dump").read_bytes())
    (newer / "manifest.json").write_text(json.dumps({**manifest, "schema_revision": "0999"}))
    refused = run_tracker("restore", str(newer), "--replace", env=cli_env)
    assert refused.returncode == 1 and "newer than this tracker knows" in refused.stderr

    missing = run_tracker("restore", str(tmp_path / "nothing"), env=cli_env)
    assert missing.returncode == 1 and "is not a backup" in missing.stderr
    # Every refusal left the database as it was.
    checked = run_tracker("db", "check", env=cli_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_db_check_upgrade_and_downgrade_name_the_migrations(unmigrated_db_url: str) -> None:
    command.upgrade(db._alembic_config(unmigrated_db_url), "0018")
    env = {**clean_env(), "TRACKER_DATABASE_URL": unmigrated_db_url}
    checked = run_tracker("db", "check", env=env)
    assert checked.returncode == 1
    assert "is at 0018" in checked.stdout and "0019: Server-side web sessions" in checked.stdout
    upgraded = run_tracker("db", "upgrade", env=env)
    assert upgraded.returncode == 0
    assert "applying 0019: Server-side web sessions" in upgraded.stdout
    assert f"applying {db.head_revision()}:" in upgraded.stdout
    assert run_tracker("db", "check", env=env).returncode == 0
    # Rolling back a release: the newest migrations undone, newest first.
    undone = run_tracker("db", "downgrade", "0018", "--yes", env=env)
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout.index(f"undoing {db.head_revision()}:") < undone.stdout.index(
        "undoing 0019: Server-side web sessions"
    )
    assert "is at 0018" in run_tracker("db", "check", env=env).stdout
    later = run_tracker("db", "downgrade", "0019", "--yes", env=env)
    assert later.returncode == 1
    assert "0019 does not come before 0018, the current one" in later.stderr
    assert run_tracker("db", "upgrade", env=env).returncode == 0
    with psycopg.connect(unmigrated_db_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    ahead = run_tracker("db", "check", env=env)
    assert ahead.returncode == 1 and "does not know" in ahead.stderr


def test_restore_refuses_a_data_dir_whose_tracker_is_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # Held as a running `tracker up` holds it: the lock comes before anything starts.
    with embedded.run_lock(data_dir):
        refused = run_tracker(
            "--data-dir", str(data_dir), "restore", str(tmp_path / "backup"), env=clean_env()
        )
    assert refused.returncode == 1
    assert "another `tracker up` is already running" in refused.stderr
    assert "stop it before restoring" in refused.stderr
    assert not (data_dir / "pg").exists()
