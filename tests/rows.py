"""Rows written straight into the test database, for tests that read them back."""

from datetime import datetime
from typing import Any

import psycopg

from tracker.domain import ParsedEntry


def insert(conn: psycopg.Connection, statement: str, *params: Any) -> int:
    row = conn.execute(statement + " RETURNING id", params).fetchone()
    assert row is not None
    return int(row[0])


def add_feed(conn: psycopg.Connection, name: str, kind: str = "media") -> int:
    return insert(
        conn,
        "INSERT INTO feeds (url, title, kind) VALUES (%s, %s, %s)",
        f"https://{name}.example/rss",
        name,
        kind,
    )


def entry(key: str, title: str, summary: str, published_at: datetime) -> ParsedEntry:
    """A parsed English feed entry whose key is both its dedupe key and its content hash."""
    return ParsedEntry(
        dedupe_key=key,
        guid=None,
        url=None,
        title=title,
        summary=summary,
        language="en",
        published_at=published_at,
        content_hash=key,
    )
