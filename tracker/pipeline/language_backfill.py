"""`tracker items detect-language`: items stored before languages were detected get the
treatment new ones get at ingestion (tracker.ingest.languages), one transaction per batch."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from classifiers import language
from tracker.storage import item_languages


@dataclass
class BackfillReport:
    scanned: int = 0
    changed: int = 0
    # (stored, detected) -> items, for the changed ones: what a dry run would do.
    moves: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)


def backfill(
    conn: psycopg.Connection,
    batch_size: int,
    dry_run: bool,
    progress: Callable[[int], None],
) -> BackfillReport:
    """Detect the language of every stored item, in id order, one transaction per batch, so an
    interrupted run keeps what it did. Running it again changes nothing: a confident detection
    gives the same language, a doubtful one keeps the stored one (the declared language it
    falls back to)."""
    report = BackfillReport()
    after = 0
    while rows := item_languages.batch(conn, after, batch_size):
        found = [(row.id, _language(row)) for row in rows]
        moves = [(row.language, code) for row, (_, code) in zip(rows, found, strict=True)]
        report.moves.update(move for move in moves if move[0] != move[1])
        if dry_run:
            report.changed += sum(old != new for old, new in moves)
        else:
            with conn.transaction():
                report.changed += item_languages.set_languages(conn, found)
        report.scanned += len(rows)
        after = rows[-1].id
        progress(len(rows))
    return report


def _language(row: item_languages.ItemLanguage) -> str | None:
    text = language.item_text(row.title, row.summary)
    return language.detect(text, row.language, row.feed_language)
