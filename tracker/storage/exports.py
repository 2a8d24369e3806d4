"""Exports of confirmed pairs and labelled items, read through server-side (named) cursors so
memory stays flat however many rows there are."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

EXPORT_BATCH = 1000


@dataclass(frozen=True)
class ExportPair:
    pair_id: int
    score: float
    confirmed_at: datetime
    rumour_id: int
    rumour_title: str
    rumour_summary: str
    rumour_url: str | None
    rumour_feed: str
    rumour_feed_kind: str
    rumour_language: str | None
    rumour_seen_at: datetime
    clarification_id: int
    clarification_title: str
    clarification_summary: str
    clarification_url: str | None
    clarification_feed: str
    clarification_feed_kind: str
    clarification_language: str | None
    clarification_seen_at: datetime


@dataclass(frozen=True)
class ExportLabel:
    item_id: int
    label: str
    label_source: str
    title: str
    summary: str
    url: str | None
    language: str | None
    feed: str
    feed_kind: str
    seen_at: datetime


def stream_confirmed_pairs(conn: psycopg.Connection) -> Iterator[ExportPair]:
    """Every confirmed pair with both items, in id order. Needs an open transaction (a named
    cursor lives in one); rows arrive EXPORT_BATCH at a time."""
    with conn.cursor(name="export_pairs", row_factory=class_row(ExportPair)) as cur:
        cur.itersize = EXPORT_BATCH
        cur.execute(
            """SELECT p.id AS pair_id, p.score, p.updated_at AS confirmed_at,
                      r.id AS rumour_id, r.title AS rumour_title, r.summary AS rumour_summary,
                      r.url AS rumour_url, coalesce(rf.title, rf.host) AS rumour_feed,
                      rf.kind AS rumour_feed_kind, r.language AS rumour_language,
                      coalesce(r.published_at, r.fetched_at) AS rumour_seen_at,
                      c.id AS clarification_id, c.title AS clarification_title,
                      c.summary AS clarification_summary, c.url AS clarification_url,
                      coalesce(cf.title, cf.host) AS clarification_feed,
                      cf.kind AS clarification_feed_kind, c.language AS clarification_language,
                      coalesce(c.published_at, c.fetched_at) AS clarification_seen_at
               FROM pairs p
               JOIN items r ON r.id = p.rumour_id JOIN feeds rf ON rf.id = r.feed_id
               JOIN items c ON c.id = p.clarification_id JOIN feeds cf ON cf.id = c.feed_id
               WHERE p.status = 'confirmed'
               ORDER BY p.id"""
        )
        yield from cur


def stream_labelled_items(conn: psycopg.Connection) -> Iterator[ExportLabel]:
    """Every item analysts labelled, as tracker.storage.labels.item_labels reads them: an
    explicit relabel ('analyst') wins over the role in a reviewed confirmed pair ('pair').
    Needs an open transaction, like stream_confirmed_pairs."""
    with conn.cursor(name="export_labels", row_factory=class_row(ExportLabel)) as cur:
        cur.itersize = EXPORT_BATCH
        cur.execute(
            """WITH explicit AS (
                   SELECT DISTINCT ON (item_id) item_id, label, 'analyst' AS label_source
                   FROM item_labels WHERE undone_at IS NULL
                   ORDER BY item_id, created_at DESC, id DESC),
               implied AS (
                   SELECT DISTINCT ON (item_id) item_id, label, 'pair' AS label_source
                   FROM (SELECT p.rumour_id AS item_id, 'rumour' AS label, p.id FROM pairs p
                         WHERE p.status = 'confirmed'
                           AND EXISTS (SELECT 1 FROM reviews v WHERE v.pair_id = p.id)
                         UNION ALL
                         SELECT p.clarification_id, 'clarification', p.id FROM pairs p
                         WHERE p.status = 'confirmed'
                           AND EXISTS (SELECT 1 FROM reviews v WHERE v.pair_id = p.id)) roles
                   WHERE item_id NOT IN (SELECT item_id FROM explicit)
                   ORDER BY item_id, id),
               labelled AS (SELECT * FROM explicit UNION ALL SELECT * FROM implied)
               SELECT i.id AS item_id, l.label, l.label_source, i.title, i.summary, i.url,
                      i.language, coalesce(f.title, f.host) AS feed, f.kind AS feed_kind,
                      coalesce(i.published_at, i.fetched_at) AS seen_at
               FROM labelled l JOIN items i ON i.id = l.item_id JOIN feeds f ON f.id = i.feed_id
               ORDER BY i.id"""
        )
        yield from cur
