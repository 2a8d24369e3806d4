"""Bulk import of archived items from JSON Lines: validate each line, load in COPY batches."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tracker.domain import ParsedEntry
from tracker.feeds.dedupe import text_fingerprint
from tracker.feeds.parse import canonical_url
from tracker.storage import feeds, items

BATCH = 5000
MAX_REPORTED = 20


class BadLineError(ValueError):
    pass


@dataclass
class ImportReport:
    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)


def import_jsonl(
    conn: psycopg.Connection, path: Path, default_kind: str, progress: Callable[[int], None]
) -> ImportReport:
    """Each line: {"feed_url", "title", optional "guid", "url", "summary", "published",
    "language"}. Unknown feeds are registered. Bad lines are reported, never half-loaded."""
    report = ImportReport()
    feed_ids: dict[str, int] = {}
    batch: list[tuple[int, ParsedEntry]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            report.lines += 1
            try:
                feed_url, entry = _entry(raw)
            except BadLineError as exc:
                _reject(report, f"line {number}: {exc}")
                continue
            if feed_url not in feed_ids:
                with conn.transaction():
                    feed, _ = feeds.add(conn, feeds.NewFeed(feed_url, default_kind))
                feed_ids[feed_url] = feed.id
            batch.append((feed_ids[feed_url], entry))
            if len(batch) >= BATCH:
                _flush(conn, batch, report)
                progress(handle.tell())
    _flush(conn, batch, report)
    progress(path.stat().st_size)
    return report


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
