"""Pairing's rows without a sentence vector, for the backfill (`tracker items embed`): rows
classified before vectors (0018), and items edited since (items.upsert drops the old text's
vector). Read in item-id order, one batch at a time; storage/vectors.py writes them."""

import psycopg
from psycopg.rows import class_row

from tracker.storage.items import ITEM_FOR_MODEL, ItemForModel


def count(conn: psycopg.Connection, model_version: str) -> int:
    row = conn.execute(
        """SELECT count(*) FROM pairing_candidates
           WHERE model_version = %s AND embedding IS NULL""",
        (model_version,),
    ).fetchone()
    return int(row[0]) if row else 0


def batch(
    conn: psycopg.Connection, model_version: str, after_id: int, limit: int
) -> list[ItemForModel]:
    """The next `limit` items by id after `after_id` whose row under `model_version` has no
    vector, locked until the transaction ends. Call inside the transaction that stores their
    vectors: an edit of one of them (which drops its vector) then waits, and lands after the
    vector of its old text, not before."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT item_id FROM pairing_candidates
               WHERE model_version = %s AND embedding IS NULL AND item_id > %s
               ORDER BY item_id LIMIT %s FOR UPDATE""",
            (model_version, after_id, limit),
        )
        ids = [row[0] for row in cur.fetchall()]
    if not ids:
        return []
    # The text is read by a statement after the lock: an edit that held the row when we asked
    # for it has committed by now, and its new text is what this one sees.
    with conn.cursor(row_factory=class_row(ItemForModel), binary=True) as cur:
        cur.execute(f"{ITEM_FOR_MODEL} WHERE i.id = ANY(%s) ORDER BY i.id", (ids,))
        return cur.fetchall()
