"""The heartbeat and ops-check tasks, run in-process against the test database and broker."""

import contextlib
from collections.abc import Iterator
from types import ModuleType

import psycopg
import pytest
from kombu import Queue
from kombu.exceptions import ChannelError

from tests.conftest import Endpoints
from tests.factories import add_user
from tracker.config import get_settings
from tracker.runtime.broker import QUEUES

pytestmark = pytest.mark.integration


@pytest.fixture
def tasks(
    db_url: str, services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    monkeypatch.setenv("TRACKER_DATABASE_URL", db_url)
    monkeypatch.setenv("TRACKER_BROKER_URL", services.broker_url)
    monkeypatch.setenv("TRACKER_OPS_BACKLOG_LIMIT", "2")
    get_settings.cache_clear()
    from workers import tasks as module

    yield module
    for pool in module._pools:
        pool.close()
    module._pools.clear()
    get_settings.cache_clear()


def test_a_worker_heartbeat_is_recorded_and_a_broker_backlog_is_reported(
    tasks: ModuleType, conn: psycopg.Connection
) -> None:
    from workers.app import app

    tasks.heartbeat("classify")
    row = conn.execute("SELECT queue, hostname FROM worker_heartbeats").fetchall()
    assert row == [("classify", "unknown")]
    add_user(conn, "a@x.org", "admin")
    with app.connection_for_write() as connection:
        # Only this test's backlog: earlier tests may leave messages on the shared broker.
        for queue in QUEUES:
            with contextlib.suppress(ChannelError):
                connection.default_channel.queue_purge(queue)
        producer = connection.Producer()
        for _ in range(3):
            producer.publish(
                {"x": 1}, routing_key="fetch", declare=[Queue("fetch", routing_key="fetch")]
            )
    try:
        queued = tasks.check_ops()
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("fetch")
    subjects = [r[0] for r in conn.execute("SELECT subject FROM alert_outbox").fetchall()]
    assert subjects == ["Queue backlog: 3 waiting on queue fetch"]
    assert queued == 1
