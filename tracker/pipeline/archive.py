"""Bulk import of archived items (JSON Lines, or ClaimReview fact-checks): validate each record,
register unknown feeds, load in COPY batches."""

import codecs
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tracker.domain import ParsedEntry
from tracker.ingest import claimreview
from tracker.ingest.dedupe import text_fingerprint
from tracker.ingest.languages import with_language
from tracker.ingest.parse import canonical_url
from tracker.storage import feeds, items

BATCH = 5000
MAX_REPORTED = 20
FORMATS = ("jsonl", "claimreview", "auto")
# A JSON Lines file's first line is one whole object; a JSON-LD document's seldom is, and never
# one this long.
SNIFF_BYTES = 1 << 20
JSONLD_KEYS = ("@context", "@type", "@graph")
ARCHIVE_REASON = "ClaimReview archive: its items were imported, there is no feed to poll"


class BadLineError(ValueError):
    pass


class FormatError(ValueError):
    pass


@dataclass
class ImportReport:
    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    unit: str = "lines"
    # Set when a ClaimReview file's JSON breaks off: what was read before the break is stored.
    error: str | None = None


class _Loader:
    """Registers each feed on first sight and loads entries in COPY batches."""

    def __init__(
        self, conn: psycopg.Connection, kind: str, report: ImportReport, archive_only: bool
    ) -> None:
        self.conn, self.kind, self.report = conn, kind, report
        # A fact-checker's home page is no feed: polling it would only fail and alert.
        self.archive_only = archive_only
        # url -> (id, language): the language is an entry's last fallback (feeds.languages).
        self.known: dict[str, tuple[int, str | None]] = {}
        self.batch: list[tuple[int, ParsedEntry]] = []

    def add(self, feed_url: str, entry: ParsedEntry) -> bool:
        """Queue one entry; True when that filled and stored a batch."""
        feed_id, feed_language = self._feed(feed_url)
        self.batch.append((feed_id, with_language(entry, feed_language)))
        if len(self.batch) < BATCH:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        _flush(self.conn, self.batch, self.report)

    def _feed(self, feed_url: str) -> tuple[int, str | None]:
        if feed_url not in self.known:
            with self.conn.transaction():
                feed, created = feeds.add(self.conn, feeds.NewFeed(feed_url, self.kind))
                if created and self.archive_only:
                    feeds.set_enabled(self.conn, feed.id, False, ARCHIVE_REASON)
            self.known[feed_url] = (feed.id, feed.language)
        return self.known[feed_url]


def choose_format(path: Path, requested: str) -> str:
    """jsonl or claimreview, as asked, or as detect_format finds for "auto"."""
    if requested not in FORMATS:
        raise FormatError(f"--format must be one of {', '.join(FORMATS)}, not {requested!r}")
    return detect_format(path) if requested == "auto" else requested


def check_feed_url(feed_url: str | None, chosen: str) -> None:
    if feed_url is None:
        return
    if chosen != "claimreview":
        raise FormatError("--feed-url is for ClaimReview files (JSON Lines name their feeds)")
    if canonical_url(feed_url) is None:
        raise FormatError(f"--feed-url must be an http(s) URL, not {feed_url!r}")


def detect_format(path: Path) -> str:
    """The format of a file, jsonl or claimreview: by extension, else by its first bytes."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".jsonld", ".html", ".htm"):
        return "claimreview"
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    first = head.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
    if first in (b"[", b"<"):
        return "claimreview"
    if first == b"{":
        return "jsonl" if _one_object_line(head) else "claimreview"
    raise FormatError(f"cannot tell the format of {path.name}: use --format jsonl|claimreview")


def _one_object_line(head: bytes) -> bool:
    line, newline, _ = head.removeprefix(codecs.BOM_UTF8).lstrip().partition(b"\n")
    try:
        row = json.loads(line) if newline else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(row, dict) and not any(key in row for key in JSONLD_KEYS)


def import_jsonl(
    conn: psycopg.Connection, path: Path, default_kind: str, progress: Callable[[int], None]
) -> ImportReport:
    """Each line: {"feed_url", "title", optional "guid", "url", "summary", "published",
    "language"}. Unknown feeds are registered. Bad lines are reported, never half-loaded."""
    report = ImportReport()
    loader = _Loader(conn, default_kind, report, archive_only=False)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            report.lines += 1
            try:
                feed_url, entry = _entry(raw)
            except BadLineError as exc:
                _reject(report, f"line {number}: {exc}")
                continue
            if loader.add(feed_url, entry):
                progress(handle.tell())
    loader.flush()
    progress(path.stat().st_size)
    return report


def import_claimreview(
    conn: psycopg.Connection,
    path: Path,
    default_kind: str,
    feed_url: str | None,
    progress: Callable[[int], None],
) -> ImportReport:
    """ClaimReview JSON-LD (an object, an array, "@graph", the DataFeed export) or an HTML
    page's JSON-LD blocks, read as a stream: each review becomes an item of its fact-checker's
    feed (its author's or publisher's url, else `feed_url`), registered disabled when new.
    Bad records are reported by number and skipped. If the JSON breaks off, the valid records
    before the break are kept (a mended file imported again adds only the rest) and
    report.error says where."""
    report = ImportReport(unit="records")
    loader = _Loader(conn, default_kind, report, archive_only=True)
    with path.open("rb") as handle:
        try:
            for record in claimreview.records(handle):
                if _load_review(loader, record, feed_url):
                    progress(handle.tell())
        except claimreview.MalformedJsonError as exc:
            report.error = f"malformed JSON within the first {handle.tell()} bytes: {exc}"
            if "trailing garbage" in str(exc):  # one document, then another: JSON Lines?
                report.error += " (for JSON Lines use --format jsonl)"
    loader.flush()
    progress(path.stat().st_size)
    return report


def _load_review(loader: _Loader, record: claimreview.Record, feed_url: str | None) -> bool:
    loader.report.lines += 1
    try:
        if record.problem:
            raise claimreview.BadRecordError(record.problem)
        found = claimreview.review(record.value)
    except claimreview.BadRecordError as exc:
        _reject(loader.report, f"{record.label}: {exc}")
        return False
    target = found.feed_url or feed_url
    if target is None:
        _reject(loader.report, f"{record.label}: no fact-checker url (author.url): use --feed-url")
        return False
    return loader.add(target, found.entry)


def _reject(report: ImportReport, problem: str) -> None:
    report.rejected += 1
    if len(report.problems) < MAX_REPORTED:
        report.problems.append(problem)


def _flush(
    conn: psycopg.Connection, batch: list[tuple[int, ParsedEntry]], report: ImportReport
) -> None:
    if not batch:
        return
    with conn.transaction():
        new = items.copy_in(conn, batch)
    report.imported += new
    report.duplicates += len(batch) - new
    batch.clear()


def _entry(raw: bytes) -> tuple[str, ParsedEntry]:
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadLineError(f"not JSON: {exc}") from exc
    if not isinstance(row, dict):
        raise BadLineError("not a JSON object")
    feed_url = _text(row, "feed_url", required=True)
    if not feed_url.startswith(("http://", "https://")):
        raise BadLineError(f"feed_url must be http(s), not {feed_url!r}")
    title, summary = _text(row, "title"), _text(row, "summary")
    if not title and not summary:
        raise BadLineError("needs a title or a summary")
    guid = _text(row, "guid") or None
    url = canonical_url(_text(row, "url") or None)
    content_hash = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    entry = ParsedEntry(
        dedupe_key=(guid or url or f"sha256:{content_hash}")[:2000],
        guid=guid,
        url=url,
        title=title or summary[:120],
        summary=summary,
        language=_text(row, "language") or None,
        published_at=_date(row.get("published")),
        content_hash=content_hash,
        text_hash=text_fingerprint(title, summary),
    )
    return feed_url, entry


def _text(row: dict[str, Any], key: str, required: bool = False) -> str:
    value = row.get(key)
    if value is None or value == "":
        if required:
            raise BadLineError(f"missing {key!r}")
        return ""
    if not isinstance(value, str):
        raise BadLineError(f"{key!r} must be a string")
    return value.replace("\x00", "").strip()


def _date(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadLineError("'published' must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadLineError(f"'published' is not an ISO 8601 date: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
