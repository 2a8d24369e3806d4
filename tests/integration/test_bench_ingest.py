"""The ingest benchmark on a tiny corpus: its server, statuses and CPU figures, never timed."""

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from tracker.bench.corpus import CorpusServer, feed_bytes
from tracker.bench.ingest import bench
from tracker.ingest.fetch import FetchError, FetchPolicy, fetch

# A benchmark-style run: CI's first pass runs it, the external-services pass does not.
pytestmark = pytest.mark.slow

LOOPBACK = FetchPolicy(5, 1_000_000, "test", (ipaddress.ip_network("127.0.0.0/8"),))


@pytest.fixture
def corpus() -> Iterator[CorpusServer]:
    server = CorpusServer()
    server.warm("feed", range(2))
    yield server
    server.close()


def test_the_corpus_server_answers_with_the_feed_and_honours_its_etag(
    corpus: CorpusServer,
) -> None:
    first = fetch(corpus.url("feed", 0), LOOPBACK)
    assert first.body == feed_bytes(0) and first.etag == corpus.etag_of("feed", 0)
    assert fetch(corpus.url("feed", 0), LOOPBACK, etag=first.etag).status_code == 304
    assert fetch(corpus.url("feed", 0), LOOPBACK, etag='"other"').status_code == 200


def test_odd_feeds_have_no_validators_and_unknown_paths_are_not_found(
    corpus: CorpusServer,
) -> None:
    assert fetch(corpus.url("small", 3), LOOPBACK).etag is None  # rendered on demand
    with pytest.raises(FetchError, match="404"):
        fetch(corpus.url("feed", 0).replace("/feed/0", "/nothing"), LOOPBACK)


# Enough for the PostgreSQL sessions to use CPU the kernel counts: it counts in ticks of 10 ms,
# and two workers' sessions over 6 feeds once added up to none on a fast machine.
FEEDS = 24


@pytest.fixture(scope="module")
def figures(session_db_url: str) -> dict[str, Any]:
    # The benchmark makes (and drops) a database of its own on the same server.
    return bench(session_db_url, n_feeds=FEEDS, repoll_feeds=20)


def test_every_feed_is_ingested_and_every_unchanged_one_spared_a_parse(
    figures: dict[str, Any],
) -> None:
    assert figures["one_worker"]["statuses"] == {"ok": FEEDS}
    assert figures["two_workers"]["statuses"] == {"ok": FEEDS}
    assert figures["repoll"]["statuses"] == {"not_modified": 10, "unchanged": 10}
    assert figures["repoll"]["spared_parse_fraction"] == 1.0


def test_cpu_is_accounted_to_workers_the_sessions_and_the_server(
    figures: dict[str, Any],
) -> None:
    cpu = figures["two_workers"]["cpu_s"]
    # This process (corpus server and dispatcher) may spend as little as a 10 ms tick or two,
    # so no lower bound beyond zero; but sending the feeds costs less than the workers' parsing
    # them, and what the run spent fits in what the machine had.
    assert cpu["workers"] > 0
    assert 0 <= cpu["server_and_dispatch"] < cpu["workers"] + 1
    ours = cpu["workers"] + (cpu["db_sessions"] or 0) + cpu["server_and_dispatch"]
    assert ours <= cpu["machine_capacity"]
    if cpu["machine_busy"] is not None:
        # The rest of the machine is what it spent beyond ours (rounded to hundredths each).
        assert cpu["everything_else"] == pytest.approx(cpu["machine_busy"] - ours, abs=0.05)
    # Sessions are measured only when PostgreSQL runs on this machine, as in the tests.
    assert cpu["db_sessions"] is None or cpu["db_sessions"] > 0
