"""Dispatch leases due feeds and queues their fetches, never more than a batch waiting: the
queue lease (TRACKER_FETCH_LEASE_S) is sized for the wait behind one batch."""

from collections.abc import Iterator
from types import ModuleType

import psycopg
import pytest
import redis
from kombu.exceptions import OperationalError

from tests.conftest import Endpoints
from tests.workerenv import worker_tasks
from tracker.storage import feeds


@pytest.fixture
def fetch_queue(
    db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, redis.Redis]]:
    with (
        worker_tasks(db_url, services.broker_url, monkeypatch) as tasks,
        tasks.app.connection_for_write() as connection,
    ):
        client: redis.Redis = connection.default_channel.client
        client.delete("fetch")
        try:
            yield tasks, client
        finally:
            client.delete("fetch")


def leased(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM feeds WHERE lease_token IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def test_dispatch_fills_the_fetch_queue_up_to_one_batch_and_no_further(
    conn: psycopg.Connection, fetch_queue: tuple[ModuleType, redis.Redis]
) -> None:
    tasks, client = fetch_queue
    for i in range(5):
        feeds.add(conn, feeds.NewFeed(f"http://site{i}.example/feed.xml", "media"))
    # Fetches of other feeds already waiting: room for two more.
    client.rpush("fetch", *["waiting"] * (feeds.DISPATCH_BATCH - 2))

    assert tasks.dispatch_due_feeds() == 2
    assert client.llen("fetch") == feeds.DISPATCH_BATCH
    assert tasks.dispatch_due_feeds() == 0
    assert leased(conn) == 2

    client.ltrim("fetch", -2, -1)  # the workers took the waiting ones
    assert tasks.dispatch_due_feeds() == 3
    assert leased(conn) == 5


def test_leases_dispatch_could_not_queue_are_given_back(
    conn: psycopg.Connection,
    fetch_queue: tuple[ModuleType, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks, client = fetch_queue
    for i in range(5):
        feeds.add(conn, feeds.NewFeed(f"http://site{i}.example/feed.xml", "media"))
    send = tasks.fetch_feed.delay
    sent: list[int] = []

    def broker_gone_after_two(feed_id: int, token: str) -> None:
        if len(sent) == 2:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        sent.append(feed_id)
        send(feed_id, token)

    monkeypatch.setattr(tasks.fetch_feed, "delay", broker_gone_after_two)
    assert tasks.dispatch_due_feeds() == 2
    assert client.llen("fetch") == 2
    assert leased(conn) == 2  # not 5: the other three are free for the next dispatch

    monkeypatch.setattr(tasks.fetch_feed, "delay", send)
    assert tasks.dispatch_due_feeds() == 3
    assert client.llen("fetch") == 5
