"""When to poll a feed next: adaptive to how often it posts, polite to server hints, and
backing off with jitter when it fails."""

import itertools
import random
import statistics
from collections.abc import Sequence
from datetime import datetime

from tracker import backoff as backoffs

RECENT_ENTRIES = 10
BACKOFF_BASE_S = 60.0


def next_interval(
    published: Sequence[datetime | None],
    cache_hint_s: float | None,
    min_s: int,
    max_s: int,
    default_s: int,
) -> int:
    """Half the median gap between recent entries (so a new post waits at most about half its
    feed's rhythm), never sooner than the server's freshness hint, clamped to [min_s, max_s]."""
    interval = float(default_s)
    dates = sorted((d for d in published if d is not None), reverse=True)[:RECENT_ENTRIES]
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(dates)]
    gaps = [g for g in gaps if g > 0]
    if gaps:
        interval = statistics.median(gaps) / 2
    if cache_hint_s is not None:
        interval = max(interval, cache_hint_s)
    return int(min(max(interval, min_s), max_s))


def backoff(error_count: int, max_s: float, rng: random.Random | None = None) -> float:
    """How long a failing feed waits: the shared backoff (tracker.backoff) from
    BACKOFF_BASE_S, doubling per consecutive error up to `max_s`, jittered."""
    return backoffs.backoff(error_count, BACKOFF_BASE_S, max_s, rng)
