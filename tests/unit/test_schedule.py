import random
from datetime import UTC, datetime, timedelta

from tracker.ingest.schedule import backoff, next_interval

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def hourly(n: int) -> list[datetime | None]:
    return [NOW - timedelta(hours=i) for i in range(n)]


def test_a_feed_that_posts_hourly_is_polled_every_half_hour() -> None:
    assert next_interval(hourly(10), None, 60, 86400, 900) == 1800


def test_the_interval_is_clamped_to_the_feeds_bounds() -> None:
    assert next_interval(hourly(10), None, 60, 600, 900) == 600
    minutely = [NOW - timedelta(minutes=i) for i in range(10)]
    assert next_interval(minutely, None, 300, 86400, 900) == 300


def test_a_server_freshness_hint_is_never_undercut() -> None:
    assert next_interval(hourly(10), 7200, 60, 86400, 900) == 7200


def test_without_dates_the_default_interval_is_kept() -> None:
    assert next_interval([None, None], None, 60, 86400, 900) == 900


def test_backoff_doubles_with_jitter_and_stops_at_the_maximum() -> None:
    rng = random.Random(1)
    first, third = backoff(0, 86400, rng), backoff(2, 86400, rng)
    assert 48 <= first <= 72 and 192 <= third <= 288
    assert backoff(30, 3600, rng) <= 3600 * 1.2
