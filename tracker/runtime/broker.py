"""The broker as the web role, the CLI and the Celery app all see it: transport options from
settings (Sentinel included), queue lengths, and which workers answer a ping."""

import contextlib
from collections.abc import Iterator
from typing import Any

from celery import Celery
from kombu.connection import Connection
from kombu.exceptions import ChannelError

from tracker.config import Settings

QUEUES = ("fetch", "classify")


def transport_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"visibility_timeout": settings.broker_visibility_timeout_s}
    if settings.broker_sentinel_master:
        options["master_name"] = settings.broker_sentinel_master
    return options


def broker_url(settings: Settings) -> str:
    if settings.broker_url is None:
        raise RuntimeError("TRACKER_BROKER_URL is not set; start with `tracker up`")
    return settings.broker_url.get_secret_value()


@contextlib.contextmanager
def connection(settings: Settings, timeout_s: float = 5.0) -> Iterator[Connection]:
    """A connection that has reached the broker, or raised within about `timeout_s`."""
    with Connection(  # type: ignore[no-untyped-call]
        broker_url(settings),
        transport_options=transport_options(settings),
        connect_timeout=timeout_s,
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout_s)
        yield conn


def queue_lengths(conn: Connection) -> dict[str, int]:
    lengths = {}
    channel = conn.default_channel
    for queue in QUEUES:
        try:
            declared = channel.queue_declare(queue, passive=True)  # type: ignore[no-untyped-call]
            lengths[queue] = declared.message_count
        except ChannelError:
            # Redis drops an empty list's key, so an empty queue is one that does not exist.
            lengths[queue] = 0
    return lengths


def ping_workers(settings: Settings, timeout_s: float) -> dict[str, str]:
    """Worker name -> its reply, for every worker that answered within `timeout_s`."""
    app = Celery("rumour_tracker", set_as_current=False)
    app.conf.update(
        broker_url=broker_url(settings), broker_transport_options=transport_options(settings)
    )
    try:
        # Our connection, which gives up after one retry: Celery's own retries for ever.
        with connection(settings) as conn:
            replies = app.control.ping(timeout=timeout_s, connection=conn)
    finally:
        app.close()
    found: dict[str, str] = {}
    for reply in replies:
        for name, answer in reply.items():
            found[name] = str(answer.get("ok", answer))
    return found
