"""Exponential backoff with jitter, the one rule for waiting after a failure: a feed's poll
(feeds.schedule), an alert email's next attempt (alerts) and a task's retry (workers.tasks).
Each caller keeps its own base and cap. Pure: no I/O, nothing of ours imported."""

import random

# The exponent stops here: past it the wait is the cap anyway, and 2**n stays a small float.
MAX_DOUBLINGS = 20


def backoff(failures: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after `failures` earlier failures: `base_s` doubled once per failure,
    capped at `max_s`, then jittered by +-20% so things that broke together retry apart (a
    wait at the cap may so exceed it by a fifth)."""
    wait = min(float(max_s), base_s * 2 ** min(failures, MAX_DOUBLINGS))
    uniform = rng.uniform if rng is not None else random.uniform
    return float(wait * uniform(0.8, 1.2))
