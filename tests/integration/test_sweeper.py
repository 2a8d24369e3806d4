"""The sweeper: work a lost message left undone is found after the grace period, and left
alone while the classify queue has messages waiting (a burst, not a loss)."""

import base64
import json
from collections.abc import Iterator
from types import ModuleType

import psycopg
import pytest
import redis

from tests.conftest import Endpoints
from tests.feedserver import FeedServer, Route
from tests.workerenv import worker_tasks
from tracker.demo import FEEDS_DIR
from tracker.ingest.parse import parse
from tracker.pipeline import classify, pairing
from tracker.pipeline.model_registry import ensure_models, item_classifier, pair_scorer
from tracker.storage import feeds, items

GRACE_S = 60


@pytest.fixture
def demo_items(conn: psycopg.Connection) -> list[int]:
    ensure_models(conn)
    ids: list[int] = []
    for entry in json.loads((FEEDS_DIR / "manifest.json").read_text()):
        new = feeds.NewFeed(
            f"http://demo.example/{entry['file']}", entry["kind"], entry["title"], entry["language"]
        )
        feed, _ = feeds.add(conn, new)
        ids += items.upsert(conn, feed.id, parse((FEEDS_DIR / entry["file"]).read_bytes()).entries)
    return ids


def age(conn: psycopg.Connection, table: str, column: str) -> None:
    conn.execute(f"UPDATE {table} SET {column} = {column} - interval '2 minutes'")


def pair(conn: psycopg.Connection, item_ids: list[int]) -> None:
    config = pairing.PairingConfig(item_classifier(conn).version, 14, 0.5, 1.01, 0.45)
    pairing.pair_items(conn, item_ids, pair_scorer(conn), config)


def test_items_never_classified_are_found_once_the_grace_period_is_over(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    assert classify.stalled(conn, GRACE_S, 1000).unclassified == []
    age(conn, "items", "fetched_at")
    assert sorted(classify.stalled(conn, GRACE_S, 1000).unclassified) == sorted(demo_items)
    classify.classify_items(conn, demo_items, 0.5, None)
    assert classify.stalled(conn, GRACE_S, 1000).unclassified == []


def test_items_classified_but_never_paired_are_found_until_pairing_runs(
    conn: psycopg.Connection, demo_items: list[int]
) -> None:
    classify.classify_items(conn, demo_items, 0.5, None)
    assert classify.stalled(conn, GRACE_S, 1000).unpaired == []
    age(conn, "classifications", "created_at")
    assert sorted(classify.stalled(conn, GRACE_S, 1000).unpaired) == sorted(demo_items)
    pair(conn, demo_items[:5])
    assert sorted(classify.stalled(conn, GRACE_S, 1000).unpaired) == sorted(demo_items[5:])
    pair(conn, demo_items)
    assert classify.stalled(conn, GRACE_S, 1000).unpaired == []


@pytest.fixture
def activated_later(conn: psycopg.Connection) -> Iterator[None]:
    """The active classifier as if activated after the items were fetched (put back after)."""
    conn.execute("UPDATE models SET activated_at = activated_at + interval '1 day' WHERE active")
    yield
    conn.execute("UPDATE models SET activated_at = activated_at - interval '1 day' WHERE active")


def test_items_an_earlier_model_classified_are_not_classified_again_by_a_newer_one(
    conn: psycopg.Connection, demo_items: list[int], activated_later: None
) -> None:
    classify.classify_items(conn, demo_items[1:], 0.5, None)
    conn.execute("UPDATE classifications SET model_version = 'item-earlier'")
    age(conn, "items", "fetched_at")
    # Only the item no model ever classified is lost work; the rest belong to the old model.
    assert classify.stalled(conn, GRACE_S, 1000).unclassified == [demo_items[0]]


@pytest.fixture
def tasks(
    db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    with worker_tasks(
        db_url, services.broker_url, monkeypatch, SWEEP_GRACE_S="60", SWEEP_BACKLOG_GRACE_S="600"
    ) as module:
        classify_queue(module).delete("classify")
        yield module
        classify_queue(module).delete("classify")


def classify_queue(tasks: ModuleType) -> redis.Redis:
    """The broker's Redis client, through Celery (the embedded broker is a unix socket URL)."""
    with tasks.app.connection_for_write() as connection:
        client: redis.Redis = connection.default_channel.client
        return client


def queued_messages(tasks: ModuleType) -> list[list[int]]:
    """The item ids of each message in the classify queue (Celery's JSON body: args first)."""
    messages = [json.loads(raw) for raw in classify_queue(tasks).lrange("classify", 0, -1)]
    return [json.loads(base64.b64decode(m["body"]))[0][0] for m in messages]


def queued_items(tasks: ModuleType) -> list[int]:
    return sorted(i for m in queued_messages(tasks) for i in m)


def test_the_sweeper_waits_the_longer_grace_while_messages_wait_in_the_queue(
    conn: psycopg.Connection, demo_items: list[int], tasks: ModuleType
) -> None:
    age(conn, "items", "fetched_at")  # two minutes: past the grace, within the backlog's
    tasks.classify_items.delay(demo_items[:1])  # a burst's message, waiting for a worker
    assert tasks.sweep_stalled() == 0
    classify_queue(tasks).delete("classify")
    # Nothing queued: items two minutes old and never classified are lost work.
    assert tasks.sweep_stalled() == len(demo_items)
    assert queued_items(tasks) == sorted(demo_items)


def test_a_feed_of_many_new_items_is_classified_in_messages_every_process_can_share(
    conn: psycopg.Connection, db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = "".join(
        f"<item><title>Claim {i}</title><link>http://a.example/{i}</link></item>"
        for i in range(120)
    )
    body = f'<rss version="2.0"><channel><title>T</title>{entries}</channel></rss>'.encode()
    with (
        FeedServer() as server,
        worker_tasks(
            db_url, services.broker_url, monkeypatch, FETCH_ALLOW_NETWORKS='["127.0.0.0/8"]'
        ) as module,
    ):
        classify_queue(module).delete("classify")
        server.routes["/big"] = Route(body)
        feeds.add(conn, feeds.NewFeed(server.url("/big"), "social", "Big", "en"))
        [lease] = feeds.claim_due(conn, 10, 60)
        try:
            assert module.fetch_feed(lease.feed_id, str(lease.token)) == 120
            messages = queued_messages(module)
        finally:
            classify_queue(module).delete("classify")
    stored = [row[0] for row in conn.execute("SELECT id FROM items ORDER BY id")]
    assert sorted(len(m) for m in messages) == [20, 50, 50]
    assert sorted(i for m in messages for i in m) == stored
