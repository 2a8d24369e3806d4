"""Migrations that move data, run on a database holding some, up and back down."""

import psycopg
from alembic import command

from tracker.storage import db


def _seed_at_0015(url: str) -> None:
    """One feed, and an item of each label classified by one model version."""
    command.upgrade(db._alembic_config(url), "0015")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO feeds (url, kind) VALUES ('https://a.example/rss', 'media')")
        for n, label in enumerate(("rumour", "clarification", "other"), start=1):
            conn.execute(
                """INSERT INTO items (id, feed_id, dedupe_key, title, summary, content_hash)
                   VALUES (%s, 1, %s, %s, 'Witnesses saw jets', 'h')""",
                (n, f"k{n}", f"Title {label}"),
            )
            conn.execute(
                """INSERT INTO classifications (item_id, model_version, label, probability)
                   VALUES (%s, 'v1', %s, 0.9)""",
                (n, label),
            )


def test_0016_moves_the_words_of_rumours_and_clarifications_and_back(
    unmigrated_db_url: str,
) -> None:
    _seed_at_0015(unmigrated_db_url)
    with psycopg.connect(unmigrated_db_url) as conn:
        before = dict(conn.execute("SELECT id, tsv::text FROM items ORDER BY id").fetchall())
    command.upgrade(db._alembic_config(unmigrated_db_url), "0016")
    with psycopg.connect(unmigrated_db_url) as conn:
        moved = conn.execute(
            "SELECT item_id, label, tsv::text FROM pairing_candidates ORDER BY item_id"
        ).fetchall()
        assert moved == [(1, "rumour", before[1]), (2, "clarification", before[2])]
        # Deleting an item removes its classification and with it the candidate row.
        conn.execute("DELETE FROM items WHERE id = 1")
        assert conn.execute("SELECT item_id FROM pairing_candidates").fetchall() == [(2,)]
        conn.commit()
    command.downgrade(db._alembic_config(unmigrated_db_url), "0015")
    with psycopg.connect(unmigrated_db_url) as conn:
        after = dict(conn.execute("SELECT id, tsv::text FROM items ORDER BY id").fetchall())
        assert after == {n: before[n] for n in (2, 3)}
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = 'items_week_terms'"
        ).fetchall()
        assert indexes == [("items_week_terms",)]
