"""Model artifacts and which version of each kind is active."""

from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class ModelInfo:
    id: int
    kind: str
    version: str
    metadata: dict[str, Any]
    active: bool
    created_at: datetime
    activated_at: datetime | None


INFO_COLUMNS = "id, kind, version, metadata, active, created_at, activated_at"


def info(conn: psycopg.Connection, model_id: int) -> ModelInfo | None:
    with conn.cursor(row_factory=class_row(ModelInfo)) as cur:
        cur.execute(f"SELECT {INFO_COLUMNS} FROM models WHERE id = %s", (model_id,))
        return cur.fetchone()


def info_by_version(conn: psycopg.Connection, version: str) -> ModelInfo | None:
    with conn.cursor(row_factory=class_row(ModelInfo)) as cur:
        cur.execute(f"SELECT {INFO_COLUMNS} FROM models WHERE version = %s", (version,))
        return cur.fetchone()


def list_models(conn: psycopg.Connection, kind: str | None = None) -> list[ModelInfo]:
    with conn.cursor(row_factory=class_row(ModelInfo)) as cur:
        cur.execute(
            f"""SELECT {INFO_COLUMNS} FROM models
               WHERE %(kind)s::text IS NULL OR kind = %(kind)s
               ORDER BY kind, created_at DESC, id DESC""",
            {"kind": kind},
        )
        return cur.fetchall()


def store(
    conn: psycopg.Connection, kind: str, version: str, artifact: bytes, metadata: dict[str, Any]
) -> None:
    conn.execute(
        """INSERT INTO models (kind, version, artifact, metadata) VALUES (%s, %s, %s, %s)
           ON CONFLICT (version) DO NOTHING""",
        (kind, version, artifact, Jsonb(metadata)),
    )


def activate(conn: psycopg.Connection, version: str) -> str | None:
    """Make `version` the active model of its kind; returns the kind, or None if unknown."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT kind FROM models WHERE version = %s FOR UPDATE", (version,))
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute("UPDATE models SET active = false WHERE kind = %s AND active", (row[0],))
        cur.execute(
            "UPDATE models SET active = true, activated_at = now() WHERE version = %s", (version,)
        )
        return str(row[0])


def previously_active(conn: psycopg.Connection, kind: str) -> str | None:
    """The model of this kind that was active before the current one."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT version FROM models
               WHERE kind = %s AND NOT active AND activated_at IS NOT NULL
               ORDER BY activated_at DESC LIMIT 1""",
            (kind,),
        )
        row = cur.fetchone()
        return str(row[0]) if row else None


def store_and_activate(
    conn: psycopg.Connection, kind: str, version: str, artifact: bytes, metadata: dict[str, Any]
) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE models SET active = false WHERE kind = %s AND active", (kind,))
        cur.execute(
            """INSERT INTO models (kind, version, artifact, metadata, active, activated_at)
               VALUES (%s, %s, %s, %s, true, now())
               ON CONFLICT (version) DO UPDATE SET active = true, activated_at = now()""",
            (kind, version, artifact, Jsonb(metadata)),
        )


def active_since(conn: psycopg.Connection, kind: str) -> tuple[str, datetime] | None:
    """The active version of this kind and when it became active."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT version, coalesce(activated_at, created_at) FROM models
               WHERE kind = %s AND active""",
            (kind,),
        )
        row = cur.fetchone()
        return (str(row[0]), row[1]) if row else None


def stored(conn: psycopg.Connection, version: str) -> StoredModel | None:
    """A version with its artifact, active or not."""
    with conn.cursor(row_factory=class_row(StoredModel)) as cur:
        cur.execute(
            "SELECT kind, version, artifact, metadata FROM models WHERE version = %s", (version,)
        )
        return cur.fetchone()


def retire(conn: psycopg.Connection, version: str) -> bool:
    """Leave no model of the kind active if `version` is the active one; whether it was. For
    an artifact that may never be loaded (a legacy pickle): its row stays, for the record."""
    with conn.cursor() as cur:
        cur.execute("UPDATE models SET active = false WHERE version = %s AND active", (version,))
        return cur.rowcount == 1
