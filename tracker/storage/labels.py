"""What analysts said about items and pairs, read back as training data."""

from datetime import datetime

import psycopg


def add_item_label(conn: psycopg.Connection, item_id: int, label: str, user_id: int | None) -> None:
    conn.execute(
        "INSERT INTO item_labels (item_id, label, user_id) VALUES (%s, %s, %s)",
        (item_id, label, user_id),
    )


def item_labels(conn: psycopg.Connection) -> dict[int, str]:
    """Each item's label as analysts gave it: an explicit relabel (not undone) wins over the
    role the item plays in a confirmed pair."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT item_id, label, 0 AS priority FROM (
                   SELECT DISTINCT ON (item_id) item_id, label FROM item_labels
                   WHERE undone_at IS NULL ORDER BY item_id, created_at DESC, id DESC) explicit
               UNION ALL
               SELECT p.rumour_id, 'rumour', 1 FROM pairs p JOIN reviews r ON r.pair_id = p.id
               WHERE p.status = 'confirmed'
               UNION ALL
               SELECT p.clarification_id, 'clarification', 1 FROM pairs p
               JOIN reviews r ON r.pair_id = p.id WHERE p.status = 'confirmed'
               ORDER BY priority"""
        )
        labels: dict[int, str] = {}
        for item_id, label, _priority in cur.fetchall():
            labels.setdefault(int(item_id), str(label))
        return labels


def pair_decisions(conn: psycopg.Connection) -> list[tuple[int, int, bool]]:
    """(rumour id, clarification id, confirmed) for pairs an analyst decided."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT DISTINCT p.rumour_id, p.clarification_id, p.status = 'confirmed'
               FROM pairs p JOIN reviews r ON r.pair_id = p.id
               WHERE p.status IN ('confirmed', 'rejected')
               ORDER BY 1, 2"""
        )
        return [(int(r), int(c), bool(ok)) for r, c, ok in cur.fetchall()]


def last_decision_at(conn: psycopg.Connection) -> datetime | None:
    """When analysts last said anything a model could learn from."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT greatest((SELECT max(created_at) FROM item_labels WHERE undone_at IS NULL),
                               (SELECT max(created_at) FROM reviews
                                WHERE decision IN ('confirm', 'reject')))"""
        )
        row = cur.fetchone()
        return row[0] if row else None
