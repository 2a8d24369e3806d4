"""Shared fixtures: real PostgreSQL and Redis, embedded unless TRACKER_TEST_* URLs are set."""

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from classifiers import bundle
from tests import tally
from tracker.runtime import embedded
from tracker.storage import db, models


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path) or "/browser/" in str(item.path):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The hostile-input tests' figures (tests/tally.py), shown even under -q.
    if tally.TRIED:
        terminalreporter.write_line(tally.summary())


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    broker_url: str


@pytest.fixture(scope="session")
def services() -> Iterator[Endpoints]:
    external_db = os.environ.get("TRACKER_TEST_DATABASE_URL")
    external_broker = os.environ.get("TRACKER_TEST_BROKER_URL")
    if external_db and external_broker:
        yield Endpoints(external_db, external_broker)
        return
    # Short path: unix socket paths are limited to about 100 bytes.
    data_dir = Path(f"/tmp/rt-test-{uuid.uuid4().hex[:8]}")  # noqa: S108 - ours, unique
    with embedded.postgres_server(data_dir) as db_url, embedded.redis_server(data_dir) as broker:
        yield Endpoints(external_db or db_url, external_broker or broker)


@pytest.fixture(scope="session")
def session_db_url(services: Endpoints) -> Iterator[str]:
    """A database of our own on the test server, migrated, dropped at the end."""
    name = f"rt_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(services.database_url, name)
    db.upgrade(url)
    yield url
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def unmigrated_db_url(services: Endpoints) -> Iterator[str]:
    """An empty database with no schema at all, dropped after the test."""
    name = f"rt_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(services.database_url, name)
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def shipped_models(conn: psycopg.Connection) -> None:
    """The bundle's models active, as `tracker up` starts, whatever an earlier test of the
    session activated (the model store outlives each test's tables)."""
    shipped = bundle.load()
    for kind, model in (("item", shipped.item), ("pair", shipped.pair)):
        models.store_and_activate(conn, kind, model.version, model.to_bytes(), model.metadata)


@pytest.fixture
def db_url(session_db_url: str) -> str:
    """The session database with every table but the model store emptied."""
    with psycopg.connect(session_db_url, autocommit=True) as conn:
        db.empty_tables(conn)
    return session_db_url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cli_env(db_url: str, services: Endpoints) -> dict[str, str]:
    """The environment for running `tracker` against the test database and broker."""
    return {**os.environ, "TRACKER_DATABASE_URL": db_url, "TRACKER_BROKER_URL": services.broker_url}


def run_tracker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )
