"""The one backoff (tracker.backoff) and each caller's parameters: a failing feed, a failed
alert email, a task retried after a transient database error."""

import random

from tracker.backoff import backoff
from tracker.ingest import schedule
from tracker.pipeline import alerts
from workers import tasks


def test_the_wait_doubles_per_failure_within_a_fifth_either_side() -> None:
    rng = random.Random(7)
    for failures in range(8):
        wait = backoff(failures, 30.0, 86400.0, rng)
        assert 0.8 * 30 * 2**failures <= wait <= 1.2 * 30 * 2**failures


def test_the_wait_stops_at_the_cap_before_jitter_and_huge_counts_do_not_overflow() -> None:
    rng = random.Random(7)
    waits = [backoff(n, 1.0, 60.0, rng) for n in (6, 7, 100, 10**9)]
    assert all(48.0 <= w <= 72.0 for w in waits)


def test_jitter_spreads_things_that_failed_together() -> None:
    rng = random.Random(3)
    assert len({backoff(4, 60.0, 3600.0, rng) for _ in range(20)}) == 20


def test_each_caller_keeps_its_base_and_cap() -> None:
    def old_alert_retry(attempts: int, base_s: float, rng: random.Random) -> float:
        return min(3600, base_s * 2**attempts) * rng.uniform(0.8, 1.2)

    for attempts in range(alerts.MAX_ATTEMPTS + 2):
        new = backoff(attempts, 30.0, alerts.RETRY_MAX_S, random.Random(attempts))
        assert new == old_alert_retry(attempts, 30.0, random.Random(attempts))
    # A feed: from a minute up to its maximum; a task: from a second up to a minute.
    assert schedule.backoff(3, 86400, random.Random(1)) == backoff(
        3, schedule.BACKOFF_BASE_S, 86400, random.Random(1)
    )
    assert (tasks.RETRY_BASE_S, tasks.RETRY_MAX_S, schedule.BACKOFF_BASE_S) == (1.0, 60.0, 60.0)
