"""Rows written straight into the test database, for tests that read them back."""

from typing import Any

import psycopg


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
