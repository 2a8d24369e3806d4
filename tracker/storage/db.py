"""Connections, migrations and the schema check every process runs at start-up."""

from dataclasses import dataclass
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from psycopg_pool import ConnectionPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the schema revision this code expects."""


def _sqlalchemy_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError("database URL must start with postgresql://")
    return "postgresql+psycopg://" + rest


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on %-escapes in passwords.
    config.set_main_option("sqlalchemy.url", _sqlalchemy_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Apply every pending migration (`tracker db upgrade`)."""
    command.upgrade(_alembic_config(url), "head")


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def current_revision(conn: psycopg.Connection) -> str | None:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return None
        cur.execute("SELECT version_num FROM alembic_version")
        found = cur.fetchone()
        return str(found[0]) if found else None


@dataclass(frozen=True)
class Migration:
    revision: str
    title: str


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: an empty database
    head: str
    # Migrations from current to head, oldest first; None when current is not one this code
    # knows (a newer tracker wrote the database).
    pending: list[Migration] | None


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config("postgresql://"))


def is_known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def schema_status(url: str) -> SchemaStatus:
    """Where the database's schema stands against this code (`tracker db check`)."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        current = current_revision(conn)
    head = head_revision()
    if current is not None and not is_known(current):
        return SchemaStatus(current, head, None)
    script = _script()
    steps = script.iterate_revisions(head, current or "base")
    pending = [_migration(step) for step in reversed(list(steps))]
    return SchemaStatus(current, head, pending)


def undone_by_downgrade(url: str, revision: str) -> list[Migration]:
    """The migrations a downgrade to `revision` undoes, newest first."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        current = current_revision(conn)
    if current is None:
        return []
    try:
        steps = [_migration(step) for step in _script().iterate_revisions(current, revision)]
    except RevisionError as exc:
        raise ValueError(f"{revision} does not come before {current}, the current one") from exc
    return [step for step in steps if step.revision != revision]


def downgrade(url: str, revision: str) -> None:
    """Undo the migrations after `revision` (`tracker db downgrade`)."""
    command.downgrade(_alembic_config(url), revision)


def _migration(step: Script) -> Migration:
    return Migration(step.revision, (step.doc or "").strip().splitlines()[0].rstrip("."))


def check_schema(url: str) -> None:
    """Refuse to run on a database that is behind (or ahead of) this code."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        current = current_revision(conn)
    expected = head_revision()
    if current is not None and not is_known(current):
        raise SchemaOutOfDateError(newer_schema(current, expected))
    if current != expected:
        raise SchemaOutOfDateError(
            f"the database schema is at revision {current or 'none'} but this version of the "
            f"tracker needs {expected}: run `tracker db upgrade` (same TRACKER_* settings)"
        )


def newer_schema(current: str, head: str) -> str:
    """Why this code refuses a database a newer tracker upgraded (no upgrade can help)."""
    return (
        f"the database schema is at revision {current}, which this tracker does not "
        f"know (it knows up to {head}): a newer tracker upgraded it; run that version"
    )


def open_pool(url: str, max_size: int = 8) -> ConnectionPool:
    return ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=True,
        check=ConnectionPool.check_connection,
        # Autocommit: every multi-statement step states its transaction with conn.transaction().
        kwargs={"autocommit": True},
    )


# Trained models outlive a reset: training once per run is enough, and the schema stays.
KEPT_ON_RESET = frozenset({"alembic_version", "models"})


def empty_tables(conn: psycopg.Connection) -> None:
    """Every table but the schema version and the model store emptied, ids restarted: a
    fresh pipeline on a warm database (benchmarks and tests)."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        if r[0] not in KEPT_ON_RESET
    ]
    conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
