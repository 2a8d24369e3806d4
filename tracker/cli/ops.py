"""Operations on the data: `tracker db upgrade|check`, `tracker backup`, `tracker restore` and
`tracker prune`."""

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from tracker.cli.util import connect, database_url, fail, print_table, settings
from tracker.config import Settings
from tracker.pipeline import retention
from tracker.runtime import embedded, supervisor
from tracker.storage import db
from tracker.storage import retention as retention_sql
from tracker.usecases import backup as backups

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations, naming each first."""
    with database_url(settings()) as url:
        status = _status(url)
        if status.pending is None:
            raise fail(_newer(status))
        for step in status.pending:
            typer.echo(f"applying {step.revision}: {step.title}")
        db.upgrade(url)
    typer.echo(f"database schema at revision {db.head_revision()}")


@db_app.command("check")
def db_check() -> None:
    """Say whether the database's schema matches this version of the tracker (exit 1 if not)."""
    with database_url(settings()) as url:
        status = _status(url)
    if status.pending is None:
        raise fail(_newer(status))
    if status.pending:
        typer.echo(
            f"the database schema is at {status.current or 'none (empty database)'}; this "
            f"tracker needs {status.head}. {len(status.pending)} migration(s) to apply with "
            "`tracker db upgrade`:"
        )
        for step in status.pending:
            typer.echo(f"  {step.revision}: {step.title}")
        raise typer.Exit(1)
    typer.echo(f"the database schema matches this tracker (revision {status.head})")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="The revision to go back to, e.g. 0019.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Undo the migrations after REVISION, to run an earlier release again. Some drop columns
    and what they held: take a backup first."""
    if not db.is_known(revision):
        raise fail(f"no migration {revision}: `tracker db check` names the current one")
    with database_url(settings()) as url:
        status = _status(url)
        if status.pending is None:
            raise fail(_newer(status))
        try:
            undone = db.undone_by_downgrade(url, revision)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if not undone:
            typer.echo(f"nothing to undo: the schema is at {status.current}")
            return
        for step in undone:
            typer.echo(f"undoing {step.revision}: {step.title}")
        if not yes:
            typer.confirm("Undo these migrations?", abort=True)
        db.downgrade(url, revision)
    typer.echo(f"database schema at revision {revision}")


def _status(url: str) -> db.SchemaStatus:
    try:
        return db.schema_status(url)
    except psycopg.OperationalError as exc:
        raise fail(f"cannot reach the database: {exc}") from exc


def _newer(status: db.SchemaStatus) -> str:
    return db.newer_schema(str(status.current), status.head)


def _key_file(s: Settings) -> Path | None:
    """The data dir's secret key, when the tracker made one (no TRACKER_SECRET_KEY set)."""
    return supervisor.secret_key_path(s.data_dir) if s.has_default_secret_key else None


def backup(
    path: Annotated[Path, typer.Argument(help="A new directory to write the backup into.")],
) -> None:
    """Back up the database (and the data dir's secret key) while the tracker runs."""
    s = settings()
    key_file = _key_file(s)
    with database_url(s) as url:
        try:
            manifest = backups.backup(url, path.expanduser(), key_file, typer.echo)
        except backups.BackupError as exc:
            raise fail(str(exc)) from exc
        except psycopg.OperationalError as exc:
            # Class 08 (or no SQLSTATE at all): the connection; anything else is the server's.
            unreachable = exc.sqlstate is None or exc.sqlstate.startswith("08")
            what = "cannot reach the database" if unreachable else "database error"
            raise fail(f"{what}: {exc}") from exc
    if key_file is None:
        typer.echo(
            "the secret key is configured outside the data dir (TRACKER_SECRET_KEY): keep it "
            "with the backup"
        )
    elif not manifest.secret_key:
        typer.echo(f"{key_file} does not exist yet (`tracker up` makes it): nothing to keep")
    typer.echo(
        f"backup written to {path} at schema {manifest.schema_revision}; Redis holds only "
        "queued tasks, which the sweeper queues again after a restore"
    )


def restore(
    path: Annotated[Path, typer.Argument(help="A directory `tracker backup` wrote.")],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Delete everything in the target database first."),
    ] = False,
) -> None:
    """Restore a backup into the configured database or the data dir (nothing may run on it),
    then upgrade the schema if the backup is older."""
    s = settings()
    with _stopped(s), database_url(s) as url:
        try:
            backups.restore(url, path.expanduser(), _key_file(s), replace, typer.echo)
        except (backups.BackupError, psycopg.OperationalError) as exc:
            raise fail(str(exc)) from exc
    typer.echo(f"restored {path}; start the tracker as usual")


@contextlib.contextmanager
def _stopped(s: Settings) -> Iterator[None]:
    """For the embedded database, hold the data dir's `tracker up` lock: a running one is
    refused. (An external database is checked by its workers' heartbeats instead.)"""
    if s.database_url is not None:
        yield
        return
    try:
        with embedded.run_lock(s.data_dir):
            yield
    except embedded.EmbeddedUnavailableError as exc:
        raise fail(f"{exc}: stop it before restoring") from exc


def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete items older than TRACKER_RETAIN_ITEMS_DAYS (and decisions older than
    TRACKER_RETAIN_DECISIONS_DAYS), keeping what analysts and the fact-check archive need."""
    s = settings()
    policy = retention.Policy.from_settings(s)
    now = datetime.now(UTC)
    cutoff = policy.items_cutoff(now)
    if dry_run:
        _show_expired(policy, now)
        return
    if cutoff is None and policy.decisions_cutoff(now) is None:
        typer.echo("nothing to prune: TRACKER_RETAIN_ITEMS_DAYS and _DECISIONS_DAYS are 0")
        return
    with connect() as conn:
        done = retention.prune(
            conn,
            policy,
            now,
            progress=lambda scanned, deleted: typer.echo(
                f"  {scanned:,} expired items read, {deleted:,} deleted"
            ),
        )
    typer.echo(
        f"deleted {done.items_deleted:,} items (of {done.scanned:,} expired), "
        f"{done.reviews_deleted:,} reviews and {done.audit_deleted:,} audit rows "
        f"in {done.seconds:.1f} s"
    )


def _show_expired(policy: retention.Policy, now: datetime) -> None:
    items_cutoff = policy.items_cutoff(now)
    decisions_cutoff = policy.decisions_cutoff(now)
    with connect() as conn:
        found = retention_sql.expired(conn, items_cutoff) if items_cutoff else None
        decisions = (
            retention_sql.count_decisions(conn, decisions_cutoff) if decisions_cutoff else None
        )
    if found is None or items_cutoff is None:
        typer.echo("items: kept forever (TRACKER_RETAIN_ITEMS_DAYS=0)")
    else:
        typer.echo(
            f"items fetched before {items_cutoff:%Y-%m-%d %H:%M} UTC "
            f"(TRACKER_RETAIN_ITEMS_DAYS={policy.items_days}): {found.expired:,}"
        )
        print_table(("kept because", "items"), [(r, f"{n:,}") for r, n in found.kept.items()])
        typer.echo(f"would delete {found.doomed:,} items (an item may be kept for several reasons)")
    if decisions is None or decisions_cutoff is None:
        typer.echo("review decisions and audit log: kept forever (TRACKER_RETAIN_DECISIONS_DAYS=0)")
    else:
        typer.echo(
            f"would delete {decisions[0]:,} reviews and {decisions[1]:,} audit rows from before "
            f"{decisions_cutoff:%Y-%m-%d %H:%M} UTC"
        )
