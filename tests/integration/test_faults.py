"""Faults injected into the real pipeline (Celery workers and beat, our own Redis with AOF and
PostgreSQL, SMTP, loopback feeds), one at a time; after each, nothing is lost or doubled. A
smaller configuration of `tracker bench faults`: 8 feeds x 5 items of rumours and the
clarifications that answer them, where the bench's default is 200 x 10."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.bench import faults
from tracker.bench.faultenv import FAST_TICKS
from tracker.bench.faultload import Load
from tracker.bench.faults import FaultBench, Result

# It starts its own PostgreSQL and Redis (to restart them), whatever TRACKER_TEST_* say.
pytestmark = [pytest.mark.integration, pytest.mark.own_services]


@pytest.fixture(scope="module")
def bench() -> Iterator[FaultBench]:
    with (
        tempfile.TemporaryDirectory(prefix="rt-faults-") as directory,
        FaultBench(
            Path(directory), Load(feeds=8, items_per_feed=5), settings=FAST_TICKS
        ).running() as running,
    ):
        yield running


def run(bench: FaultBench, fault: str, resends: int = 0) -> Result:
    result = bench.run(fault)
    print(result)
    assert result.items_found == result.items_expected > 0
    assert result.item_duplicates == result.classification_duplicates == 0
    assert result.pair_duplicates == 0
    assert result.alert_duplicates <= resends
    assert result.unclassified == result.unpaired == result.alerts_lost == 0
    assert result.classified == result.items_found
    # A task may meet a transient error and send itself again; none gives up.
    assert not [error for error in result.task_errors if error.startswith("failed")]
    return result


def test_a_clean_run_stores_classifies_pairs_and_alerts_everything_once(
    bench: FaultBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    # The bench says every 10 s what a run still has to do; this small run settles sooner.
    monkeypatch.setattr(faults, "PROGRESS_EVERY_S", 1)
    monkeypatch.setattr(bench, "progress", said.append)
    result = run(bench, "none")
    assert result.pairs > 0
    assert result.alerts_received == result.alerts_queued > 0
    assert result.fetches == result.feeds
    assert said, "no progress while the run settled"
    assert all("after the fault, still to do: " in line for line in said), said


def test_a_worker_killed_mid_fetch_loses_nothing(bench: FaultBench) -> None:
    result = run(bench, "kill_worker_mid_fetch")
    # The stalled feed (and any other the worker was fetching) again once its lease expires.
    assert result.fetches > result.feeds


def test_a_worker_killed_mid_classification_loses_nothing(bench: FaultBench) -> None:
    result = run(bench, "kill_worker_mid_classify")
    assert result.alerts_received == result.alerts_queued > 0


def test_a_worker_killed_mid_pairing_loses_nothing(bench: FaultBench) -> None:
    result = run(bench, "kill_worker_mid_pair")
    # The killed task's items, re-queued by the sweeper once the classify queue drained.
    assert result.swept > 0
    assert result.pairs > 0 and result.alerts_received == result.alerts_queued > 0


def test_a_redis_restart_during_a_run_loses_nothing(bench: FaultBench) -> None:
    run(bench, "redis_restart")


def test_a_postgres_restart_during_a_run_loses_nothing(bench: FaultBench) -> None:
    # An alert the SMTP server took just before the restart is marked sent once the database is
    # back (alerts.BatchInterrupted), not sent again after its lease.
    run(bench, "postgres_restart")


def test_alerts_queued_during_an_smtp_outage_are_sent_once_it_ends(bench: FaultBench) -> None:
    result = run(bench, "smtp_outage")
    assert result.alerts_received == result.alerts_queued > 0


def test_a_second_beat_fetches_no_feed_twice(bench: FaultBench) -> None:
    result = run(bench, "second_beat")
    assert result.fetches == result.feeds


def test_every_connection_slot_taken_for_a_while_loses_nothing(bench: FaultBench) -> None:
    run(bench, "connection_limit")
