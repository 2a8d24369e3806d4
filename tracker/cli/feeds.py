"""`tracker feeds ...` and `tracker items ...`: manage feeds, OPML, local parsing, bulk import."""

import json
import sys
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from tracker.cli.util import choices, connect, fail, one_of, print_json, print_table, settings
from tracker.domain import FEED_KINDS, Feed
from tracker.ingest import opml
from tracker.ingest.parse import describe_file
from tracker.pipeline import archive, language_backfill
from tracker.redact import redact_optional, redact_text
from tracker.storage import audit, feeds, item_languages
from tracker.usecases import feed_admin

feeds_app = typer.Typer(help="Feeds to poll.", no_args_is_help=True)
items_app = typer.Typer(help="Items (feed entries).", no_args_is_help=True)

Kind = Annotated[str | None, typer.Option(callback=one_of(FEED_KINDS), help=choices(FEED_KINDS))]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="Repeat for several.")]
MinInterval = Annotated[int | None, typer.Option(min=10, help="Poll no more often (seconds).")]
MaxInterval = Annotated[int | None, typer.Option(min=10, help="Poll at least this often.")]


def _feed_url(url: str, find: bool) -> str:
    try:
        found = feed_admin.feed_url(url, find, settings())
    except feed_admin.FeedInputError as exc:
        raise fail(str(exc)) from exc
    if len(found.candidates) > 1:
        typer.echo(
            f"found {len(found.candidates)} feeds, adding the first: {', '.join(found.candidates)}"
        )
    return found.url


def _language(language: str | None) -> str:
    """As the web and API take it: a code like en or ro, lower case; "" for none."""
    try:
        return feed_admin.language_code(language)
    except feed_admin.FeedInputError as exc:
        raise fail(f"--language: {exc}") from exc


@feeds_app.command("add")
def feeds_add(
    url: str,
    kind: Kind = "other",
    title: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str | None, typer.Option(help="e.g. en, ro")] = None,
    tag: Tags = None,
    min_interval: MinInterval = None,
    max_interval: MaxInterval = None,
    discover_feed: Annotated[
        bool,
        typer.Option("--discover", help="URL is a site: find its feed (link tags, common paths)."),
    ] = False,
) -> None:
    """Register a feed to poll (adding the same URL twice is harmless)."""
    s = settings()
    code = _language(language)
    new = feeds.NewFeed(
        url=_feed_url(url, discover_feed),
        kind=kind or "other",
        title=title,
        language=code or None,
        tags=tag or (),
        min_interval_s=min_interval or s.poll_min_interval_s,
        max_interval_s=max_interval or s.poll_max_interval_s,
    )
    if new.min_interval_s > new.max_interval_s:
        raise fail("--min-interval must not exceed --max-interval")
    with connect() as conn, conn.transaction():
        feed, created = feed_admin.add(conn, new, s, "cli")
    shown = redact_text(feed.url)
    typer.echo(f"{'added' if created else 'already registered'}: feed {feed.id} {shown}")


def _health(feed: Feed) -> dict[str, object]:
    shown = {
        k: v for k, v in asdict(feed).items() if k not in ("etag", "last_modified", "body_hash")
    }
    # Keys and passwords in a feed URL are shown only on the admin's edit form (tracker.redact).
    for key in ("url", "last_error", "disabled_reason"):
        shown[key] = redact_optional(getattr(feed, key))
    return shown


@feeds_app.command("list")
def feeds_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List feeds with their health: status, last error, error count, next poll."""
    with connect() as conn:
        found = feeds.list_all(conn)
    if as_json:
        print_json([_health(f) for f in found])
        return
    print_table(
        ("id", "kind", "state", "next poll (UTC)", "feed"),
        (
            (
                f.id,
                f.kind,
                f.status if f.enabled else f"disabled ({f.disabled_reason or 'by hand'})",
                f"{f.next_poll_at.astimezone(UTC):%Y-%m-%d %H:%M}",
                f"{f.title or '-'}  {redact_text(f.url)}"
                + (
                    f"  errors={f.error_count}: {redact_text(f.last_error)}" if f.last_error else ""
                ),
            )
            for f in found
        ),
    )


@feeds_app.command("edit")
def feeds_edit(
    feed_id: int,
    kind: Kind = None,
    title: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str | None, typer.Option()] = None,
    tag: Tags = None,
    min_interval: MinInterval = None,
    max_interval: MaxInterval = None,
) -> None:
    """Change a feed's kind, title, language, tags or interval bounds."""
    code = None if language is None else _language(language)
    with connect() as conn, conn.transaction():
        feed = feeds.get(conn, feed_id)
        if feed is None:
            raise fail(f"no feed with id {feed_id}")
        _check_intervals(feed, min_interval, max_interval)
        feeds.update(
            conn,
            feed_id,
            kind=kind,
            title=title,
            language=code,
            tags=tag,
            min_interval_s=min_interval,
            max_interval_s=max_interval,
        )
        audit.record(conn, "cli", "feed.edit", f"feed:{feed_id}")
    typer.echo(f"feed {feed_id} updated")


def _check_intervals(feed: Feed, min_interval: int | None, max_interval: int | None) -> None:
    """The bounds as `feeds add` and the web hold them; a bound changed alone is held to the
    feed's stored other one."""
    low = feed.min_interval_s if min_interval is None else min_interval
    high = feed.max_interval_s if max_interval is None else max_interval
    if low > high:
        raise fail(
            f"--min-interval must not exceed --max-interval (feed {feed.id} would have "
            f"{low} s and {high} s)"
        )


def _set_enabled(feed_id: int, enabled: bool) -> None:
    with connect() as conn, conn.transaction():
        if not feed_admin.set_enabled(conn, feed_id, enabled, "cli"):
            raise fail(f"no feed with id {feed_id}")
    typer.echo(f"feed {feed_id} {'enabled' if enabled else 'disabled'}")


@feeds_app.command("disable")
def feeds_disable(feed_id: int) -> None:
    """Stop polling a feed (its items stay)."""
    _set_enabled(feed_id, False)


@feeds_app.command("enable")
def feeds_enable(feed_id: int) -> None:
    """Poll a feed again, now, with its error count reset."""
    _set_enabled(feed_id, True)


@feeds_app.command("delete")
def feeds_delete(
    feed_id: int, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Delete a feed and its items."""
    if not yes and not typer.confirm(f"Delete feed {feed_id} and all its items?"):
        raise typer.Exit(1)
    with connect() as conn, conn.transaction():
        if not feeds.delete(conn, feed_id):
            raise fail(f"no feed with id {feed_id}")
        audit.record(conn, "cli", "feed.delete", f"feed:{feed_id}")
    typer.echo(f"feed {feed_id} deleted")


@feeds_app.command("poll")
def feeds_poll(feed_id: int) -> None:
    """Poll a feed at the next dispatch (within seconds when the tracker runs)."""
    with connect() as conn, conn.transaction():
        if not feed_admin.poll_now(conn, feed_id, "cli"):
            raise fail(f"no enabled feed with id {feed_id}")
    typer.echo(f"feed {feed_id} is due now")


@feeds_app.command("import-opml")
def feeds_import_opml(path: Path, kind: Kind = "other") -> None:
    """Register every feed of an OPML file; its categories become tags."""
    try:
        data = opml.read_capped(path)
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from exc
    except opml.OpmlError as exc:
        raise fail(f"{path}: {exc}") from exc
    try:
        with connect() as conn, conn.transaction():
            report = feed_admin.import_opml(
                conn, data, kind or "other", settings(), "cli", str(path)
            )
    except opml.OpmlError as exc:
        raise fail(f"{path}: {exc}") from exc
    for problem in report.problems:
        typer.secho(f"skipped: {problem}", err=True, fg=typer.colors.YELLOW)
    typer.echo(
        f"{report.added} feeds added, {report.already} already registered, "
        f"{len(report.problems)} skipped"
    )


@feeds_app.command("export-opml")
def feeds_export_opml(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Write every feed as OPML (to PATH, or standard output)."""
    with connect() as conn:
        data, count = feed_admin.export_opml(conn)
    if path is None:
        sys.stdout.buffer.write(data)
    else:
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise fail(f"cannot write {path}: {exc.strerror}") from exc
        typer.echo(f"{count} feeds written to {path}")


@feeds_app.command("parse")
def feeds_parse(path: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Run a local file through the same parse path as fetched feeds; exit 1 when it cannot
    be read or is not a feed (a feed with recoverable faults, bozo, is still one)."""
    described = describe_file(path)
    if as_json:
        typer.echo(json.dumps(described, ensure_ascii=False))
    else:
        typer.echo(
            f"{described['entries']} entries, bozo={described['bozo']}, error={described['error']}"
        )
        for title in described["titles"]:
            typer.echo(f"  {title}")
    if described["error"]:
        raise fail(described["error"])


@items_app.command("import")
def items_import(
    path: Path,
    kind: Annotated[
        str | None,
        typer.Option(
            callback=one_of(FEED_KINDS),
            help="Kind of new feeds (default: other for jsonl, factcheck for claimreview). "
            + choices(FEED_KINDS),
        ),
    ] = None,
    file_format: Annotated[
        str,
        typer.Option(
            "--format",
            callback=one_of(archive.FORMATS),
            help="auto: by extension and content. " + choices(archive.FORMATS),
        ),
    ] = "auto",
    feed_url: Annotated[
        str | None,
        typer.Option(help="ClaimReview: the feed of reviews whose author has no url."),
    ] = None,
) -> None:
    """Bulk-load archived items with COPY: JSON Lines, or ClaimReview fact-checks.

    JSON Lines, one item a line: {"feed_url": ..., "title": ..., and optionally "guid", "url",
    "summary", "published" (ISO 8601), "language"}. ClaimReview: schema.org JSON-LD (an object,
    an array, "@graph"), Google's DataFeed export, or an HTML page's JSON-LD blocks; each review
    is an item of its fact-checker's feed (registered disabled: an archive, not a feed to poll).
    If the JSON breaks off, what came before the break is kept and the command exits 1.
    """
    if not path.is_file():
        raise fail(f"no such file: {path}")
    try:
        chosen = archive.choose_format(path, file_format)
        archive.check_feed_url(feed_url, chosen)
    except archive.FormatError as exc:
        raise fail(str(exc)) from exc
    report = _import_with_progress(path, chosen, kind, feed_url)
    for problem in report.problems:
        typer.secho(f"rejected {problem}", err=True, fg=typer.colors.YELLOW)
    typer.echo(
        f"{report.lines} {report.unit}: {report.imported} items imported, {report.duplicates} "
        f"already stored, {report.rejected} rejected"
    )
    if report.error:
        raise fail(f"{path}: {report.error}; the records before it were loaded")


def _import_with_progress(
    path: Path, chosen: str, kind: str | None, feed_url: str | None
) -> archive.ImportReport:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with connect() as conn, Progress(*columns, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"importing {path.name}", total=path.stat().st_size)

        def progress(done: int) -> None:
            bar.update(task, completed=done)

        if chosen == "jsonl":
            return archive.import_jsonl(conn, path, kind or "other", progress)
        return archive.import_claimreview(conn, path, kind or "factcheck", feed_url, progress)


@items_app.command("detect-language")
def items_detect_language(
    batch: Annotated[int, typer.Option("--batch", min=1, help="Items per transaction.")] = 2000,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would change; write nothing.")
    ] = False,
) -> None:
    """Detect the language of every stored item from its text and store it where it differs
    (search, filters, alerts and pages follow). Doubtful text keeps its stored language, else
    its feed's. Safe to interrupt and to run again."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with connect() as conn, Progress(*columns, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("detecting languages", total=item_languages.count(conn))
        report = language_backfill.backfill(
            conn, batch, dry_run, lambda done: bar.update(task, advance=done)
        )
    for (old, new), n in report.moves.most_common(10):
        typer.echo(f"  {old or 'unknown'} -> {new or 'unknown'}: {n}")
    verb = "would change" if dry_run else "changed"
    typer.echo(f"{report.scanned} items: {report.changed} {verb}")


@items_app.command("embed")
def items_embed(
    batch: Annotated[int, typer.Option("--batch", min=1, help="Items per transaction.")] = 64,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Embed at most this many items.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the items without a vector; write nothing.")
    ] = False,
) -> None:
    """Compute and store the sentence vectors of the rumours and clarifications the active
    item model gave pairing without one (classified before vectors, or edited since), so
    pairing's search by meaning finds them. Safe to interrupt and to run again."""
    # Deferred: the use case loads the classifiers, which every other command would pay for.
    from tracker.pipeline import embed_backfill

    try:
        with connect() as conn:
            version = embed_backfill.model_version(conn)
            if dry_run:
                todo = embed_backfill.remaining(conn, version, limit)
                typer.echo(f"{todo:,} items would be embedded (item model {version})")
                return
            done = embed_backfill.backfill(
                conn, version, lambda p: typer.echo(p.line()), batch, limit
            )
            left = embed_backfill.remaining(conn, version)
    except embed_backfill.NoActiveModelError as exc:
        raise fail(f"{exc}: activate one with `tracker models activate VERSION`") from exc
    except psycopg.OperationalError as exc:
        raise fail(f"cannot reach the database: {exc}") from exc
    typer.echo(f"{done:,} items embedded, {left:,} still without a vector (item model {version})")
