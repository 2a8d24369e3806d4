"""Worker heartbeats: each queue's last sign of life, read by `tracker workers status` and the
ops alerts."""

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


def beat(conn: psycopg.Connection, queue: str, hostname: str) -> None:
    """A worker consuming `queue` is alive (written by a periodic task that worker runs)."""
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO worker_heartbeats (queue, hostname) VALUES (%s, %s)
               ON CONFLICT (queue) DO UPDATE SET hostname = EXCLUDED.hostname, beat_at = now()""",
            (queue, hostname),
        )


@dataclass(frozen=True)
class Heartbeat:
    queue: str
    hostname: str
    beat_at: datetime
    age_s: float


def heartbeats(conn: psycopg.Connection) -> list[Heartbeat]:
    with conn.cursor(row_factory=class_row(Heartbeat)) as cur:
        cur.execute(
            """SELECT queue, hostname, beat_at,
                      extract(epoch FROM now() - beat_at)::float8 AS age_s
               FROM worker_heartbeats ORDER BY queue"""
        )
        return cur.fetchall()
