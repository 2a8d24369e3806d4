"""The SQL of backups and restores: a snapshot to dump, rows counted table by table, whether a
database is empty or in use, and clearing one to restore into."""

from datetime import datetime

import psycopg
from psycopg import sql


def export_snapshot(conn: psycopg.Connection) -> str:
    """Begin a read-only repeatable-read transaction on conn (not in autocommit) and name its
    snapshot: pg_dump --snapshot sees exactly what this transaction sees."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


def server_major(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows in each of our tables (the public schema), by name."""
    names = [
        str(row[0])
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    counts = {}
    for name in names:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
        row = conn.execute(query).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


def has_tables(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public')"
    ).fetchone()
    return bool(row and row[0])


def latest_heartbeat(conn: psycopg.Connection) -> tuple[str, datetime] | None:
    """The worker that last beat and when; None when none ever did (or no schema yet)."""
    row = conn.execute("SELECT to_regclass('worker_heartbeats') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute(
        "SELECT hostname, beat_at FROM worker_heartbeats ORDER BY beat_at DESC LIMIT 1"
    ).fetchone()
    return (str(found[0]), found[1]) if found else None


def clear(conn: psycopg.Connection) -> None:
    """Drop everything in the public schema (tables, extensions' objects) and recreate it."""
    owner = conn.execute("SELECT current_user").fetchone()
    assert owner is not None
    conn.execute("DROP SCHEMA public CASCADE")
    conn.execute(
        sql.SQL("CREATE SCHEMA public AUTHORIZATION {}").format(sql.Identifier(str(owner[0])))
    )


def refresh_statistics(conn: psycopg.Connection) -> None:
    """VACUUM ANALYZE the whole database (conn in autocommit): pg_restore brings no planner
    statistics and no visibility map, and without them the review queue's plans are slow
    until autovacuum gets round to every table."""
    conn.execute("VACUUM ANALYZE")
