"""Model artifacts and which version of each kind is active."""

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class StoredModel:
    kind: str
    version: str
    artifact: bytes
    metadata: dict[str, Any]


def active(conn: psycopg.Connection, kind: str) -> StoredModel | None:
    with conn.cursor(row_factory=class_row(StoredModel)) as cur:
        cur.execute(
            "SELECT kind, version, artifact, metadata FROM models WHERE kind = %s AND active",
            (kind,),
        )
        return cur.fetchone()


def lock_training(conn: psycopg.Connection) -> None:
    """Serialise first-start training across processes, until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(7263115)")


def active_version(conn: psycopg.Connection, kind: str) -> str | None:
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM models WHERE kind = %s AND active", (kind,))
        row = cur.fetchone()
        return str(row[0]) if row else None


def store_and_activate(
    conn: psycopg.Connection, kind: str, version: str, artifact: bytes, metadata: dict[str, Any]
) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE models SET active = false WHERE kind = %s AND active", (kind,))
        cur.execute(
            """INSERT INTO models (kind, version, artifact, metadata, active)
               VALUES (%s, %s, %s, %s, true)
               ON CONFLICT (version) DO UPDATE SET active = true""",
            (kind, version, artifact, Jsonb(metadata)),
        )
