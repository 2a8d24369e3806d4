"""Backups and restores (`tracker backup PATH`, `tracker restore PATH`).

A backup is a directory, private to its user (0700, files 0600):
- `database.dump`: pg_dump's custom format, taken from one exported snapshot, so it is
  consistent while `tracker up` and its workers go on writing;
- `manifest.json`: the schema revision, the tracker's version, and every table's rows counted
  in that same snapshot (a restore is checked against them);
- `secret_key`: the data dir's session-signing key, when the tracker made one (no
  TRACKER_SECRET_KEY configured): with it, sessions and mailed unsubscribe links go on working.

Redis is not backed up: it holds only queued task messages, and the sweeper queues again any
item stored but not classified or paired. Alerts delivered as .eml files (no SMTP host) stay
in the data dir's outbox folder and are not included either.
"""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tracker.storage import backups, db

FORMAT = 1
DUMP = "database.dump"
MANIFEST = "manifest.json"
KEY_FILE = "secret_key"
# A worker heartbeat this recent means the tracker is running on the database.
RUNNING_WITHIN = timedelta(minutes=3)

Say = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    format: int
    tracker_version: str
    schema_revision: str | None
    created_at: str
    tables: dict[str, int]
    secret_key: bool


@dataclass(frozen=True)
class Restored:
    tables: dict[str, int]
    upgraded_from: str | None  # the backup's revision when the restore upgraded it


def _pg_tool_dirs() -> list[Path]:
    """Where pg_dump and pg_restore may be: the embedded server's own, Debian's per-version
    directories, then PATH."""
    found = []
    try:
        with warnings.catch_warnings():
            # platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset (servers).
            warnings.simplefilter("ignore")
            from pgserver import _commands

        found.append(Path(_commands.POSTGRES_BIN_PATH))
    except ImportError:
        pass
    found.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path).parent)
    return found


def _tool_major(tool: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def pg_tools(server_major: int) -> Path:
    """A directory with pg_dump and pg_restore of the server's major version or newer (an
    older pg_dump refuses a newer server)."""
    for directory in _pg_tool_dirs():
        dump = directory / "pg_dump"
        if not (dump.exists() and (directory / "pg_restore").exists()):
            continue
        major = _tool_major(dump)
        if major is not None and major >= server_major:
            return directory
    raise BackupError(
        f"no pg_dump and pg_restore of PostgreSQL {server_major} or newer found: install "
        f"them (Debian: apt-get install postgresql-client-{server_major})"
    )


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The connection string for pg_dump's --dbname without the password, which goes in the
    environment instead: command lines are visible to every user of the machine."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()}")


def _private_dir(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{path} exists and is not an empty directory: choose a new path")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def backup(url: str, target: Path, key_file: Path | None, say: Say) -> Manifest:
    """Dump the database at url into the new directory target, with key_file (the data dir's
    secret key) when given."""
    _private_dir(target)
    started = time.monotonic()
    conninfo, env = _libpq(url)
    with psycopg.connect(url, connect_timeout=10) as conn:
        # The transaction stays open until pg_dump is done: its snapshot must live that long.
        snapshot = backups.export_snapshot(conn)
        revision = db.current_revision(conn)
        tools = pg_tools(backups.server_major(conn))
        say("counting rows ...")
        tables = backups.table_counts(conn)
        say(f"dumping {tables.get('items', 0):,} items in {len(tables)} tables ...")
        _run(
            [
                str(tools / "pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={target / DUMP}",
                f"--dbname={conninfo}",
            ],
            env,
            "pg_dump",
        )
    (target / DUMP).chmod(0o600)
    has_key = key_file is not None and key_file.exists()
    if key_file is not None and has_key:
        _write_private(target / KEY_FILE, key_file.read_bytes())
    manifest = Manifest(
        format=FORMAT,
        tracker_version=importlib.metadata.version("rumour-tracker"),
        schema_revision=revision,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        tables=tables,
        secret_key=has_key,
    )
    _write_private(target / MANIFEST, json.dumps(asdict(manifest), indent=2).encode())
    size = (target / DUMP).stat().st_size
    say(f"backed up in {time.monotonic() - started:.1f} s: {size / 1e6:,.1f} MB dump")
    return manifest


def read_manifest(source: Path) -> Manifest:
    path = source / MANIFEST
    try:
        fields = json.loads(path.read_text())
        manifest = Manifest(**fields)
    except FileNotFoundError as exc:
        raise BackupError(f"{source} is not a backup: it has no {MANIFEST}") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from exc
    if manifest.format > FORMAT:
        raise BackupError(
            f"{source} was written by a newer tracker ({manifest.tracker_version}): restore it "
            "with that version or a later one"
        )
    if not (source / DUMP).exists():
        raise BackupError(f"{source} is incomplete: {DUMP} is missing")
    return manifest


def _refuse_newer(manifest: Manifest) -> None:
    revision = manifest.schema_revision
    if revision is not None and not db.is_known(revision):
        raise BackupError(
            f"the backup's schema is at revision {revision}, newer than this tracker knows "
            f"(up to {db.head_revision()}): it was made by tracker {manifest.tracker_version}; "
            "restore it with that version or a later one"
        )


def _refuse_in_use(conn: psycopg.Connection, replace: bool, now: datetime) -> None:
    beat = backups.latest_heartbeat(conn)
    if beat is not None and now - beat[1] < RUNNING_WITHIN:
        raise BackupError(
            f"a tracker is running on this database (worker {beat[0]} last seen "
            f"{int((now - beat[1]).total_seconds())} s ago): stop its workers, beat and web "
            "first"
        )
    if backups.has_tables(conn) and not replace:
        raise BackupError(
            "the database is not empty: restore into a new data dir or database, or pass "
            "--replace to delete everything in it first"
        )


def restore(url: str, source: Path, key_file: Path | None, replace: bool, say: Say) -> Restored:
    """Restore the backup in source into the database at url (and its secret key into
    key_file), then upgrade the schema if the backup is older than this code."""
    manifest = read_manifest(source)
    _refuse_newer(manifest)
    started = time.monotonic()
    conninfo, env = _libpq(url)
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        _refuse_in_use(conn, replace, datetime.now(UTC))
        tools = pg_tools(backups.server_major(conn))
        if replace:
            say("deleting what the database held ...")
            backups.clear(conn)
    say(f"restoring {manifest.tables.get('items', 0):,} items in {len(manifest.tables)} tables ...")
    _run(
        [
            str(tools / "pg_restore"),
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
            f"--dbname={conninfo}",
            str(source / DUMP),
        ],
        env,
        "pg_restore",
    )
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        tables = backups.table_counts(conn)
    if tables != manifest.tables:
        names = tables.keys() | manifest.tables.keys()
        differ = sorted(t for t in names if tables.get(t) != manifest.tables.get(t))
        raise BackupError(f"the restored rows differ from the backup's counts: {', '.join(differ)}")
    say(f"{len(tables)} tables, {sum(tables.values()):,} rows: as counted at the backup")
    if key_file is not None and manifest.secret_key:
        _write_private(key_file, (source / KEY_FILE).read_bytes())
    upgraded_from = None
    if manifest.schema_revision != db.head_revision():
        upgraded_from = manifest.schema_revision
        say(f"upgrading the schema from {upgraded_from} to {db.head_revision()} ...")
        db.upgrade(url)
    say("refreshing the planner's statistics (VACUUM ANALYZE) ...")
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        backups.refresh_statistics(conn)
    say(f"restored in {time.monotonic() - started:.1f} s")
    return Restored(tables=tables, upgraded_from=upgraded_from)
