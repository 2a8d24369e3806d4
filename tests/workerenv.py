"""workers.tasks configured as a worker process would be: the test database and broker, SMTP
on a loopback port. Tasks are called in-process, so they run the code a worker runs."""

import contextlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import free_port
from tracker.config import get_settings


@contextlib.contextmanager
def worker_tasks(
    db_url: str, broker_url: str, monkeypatch: pytest.MonkeyPatch, **env: str
) -> Iterator[ModuleType]:
    settings = {
        "DATABASE_URL": db_url,
        "BROKER_URL": broker_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
        "SMTP_TIMEOUT_S": "2",
        "PUBLIC_URL": "http://tracker.example",
        "SECRET_KEY": "w" * 40,
        **env,
    }
    for name, value in settings.items():
        monkeypatch.setenv(f"TRACKER_{name}", value)
    get_settings.cache_clear()
    from workers import tasks

    try:
        yield tasks
    finally:
        for pool in tasks._pools:
            pool.close()
        tasks._pools.clear()
        get_settings.cache_clear()


def smtp_port() -> int:
    """The port the worker's settings send to (start an SmtpSink there)."""
    return get_settings().smtp_port
