"""The review benchmark end to end on tiny sizes: figures present and sane, never timed."""

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tracker.bench.review import bench

# A benchmark-style run: CI's first pass runs it, the external-services pass does not.
pytestmark = pytest.mark.slow

ENDPOINTS = ("queue_page", "api_pairs")


@pytest.fixture(scope="module")
def figures(session_db_url: str) -> dict[str, Any]:
    # The benchmark makes (and drops) a database of its own on the same server.
    return bench(session_db_url, n_items=400, n_pairs=100, requests=20)


def test_both_endpoints_are_timed_over_the_requests_asked_for(figures: dict[str, Any]) -> None:
    assert (figures["items"], figures["pairs"], figures["reused"]) == (400, 100, False)
    assert figures["load_seconds"] > 0
    for name in ENDPOINTS:
        measured = figures[name]
        assert measured["requests"] == 20
        ms = measured["ms"]
        assert 0 < ms["p50"] <= ms["p95"] <= ms["p99"] <= ms["max"]
    assert figures["queue_page"]["slowest"].startswith("/")
    assert figures["api_pairs"]["slowest"].startswith("/api/v1/pairs")


def test_the_p95_targets_are_reported(figures: dict[str, Any]) -> None:
    targets = figures["targets"]
    assert set(targets) == {"queue_page_p95_ms", "api_pairs_p95_ms"}
    for name in ENDPOINTS:
        target = targets[f"{name}_p95_ms"]
        assert target["value"] == figures[name]["ms"]["p95"] and target["target"] == "<= 100"
        assert target["met"] is (target["value"] <= 100)


def test_a_reused_database_is_loaded_once(session_db_url: str) -> None:
    name = f"rt_bench_reuse_{uuid.uuid4().hex[:8]}"
    try:
        first = bench(session_db_url, n_items=200, n_pairs=50, requests=10, reuse=name)
        again = bench(session_db_url, n_items=200, n_pairs=50, requests=10, reuse=name)
        parts = urlsplit(session_db_url)
        url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM items), count(*) FROM pairs"
            ).fetchone()
        with pytest.raises(RuntimeError, match="holds 200 items and 50 pairs"):
            bench(session_db_url, n_items=400, n_pairs=50, requests=10, reuse=name)
    finally:
        with psycopg.connect(session_db_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert not first["reused"] and again["reused"] and again["load_seconds"] is None
    assert row == (200, 50)
    assert again["queue_page"]["ms"]["p50"] > 0


def test_more_pairs_than_half_the_items_are_refused(session_db_url: str) -> None:
    with pytest.raises(ValueError, match="each pair needs two items"):
        bench(session_db_url, n_items=100, n_pairs=60, requests=10)
