"""Which of an item's words to look for: candidate searches (pairing, and the context of
similar earlier items) match items sharing a distinctive one."""

import threading
import time
from collections.abc import Sequence

import psycopg

from tracker.storage import pairs

# A candidate must share a distinctive term with the query: one in under 1% of the rumours and
# clarifications pairing searches, or else one of the query's three least common. Ranking every
# item of the window that shares any word ("officials", "posted") takes about a second at a
# million items, and such items rarely answer each other.
DISTINCTIVE_BELOW = 0.01
DISTINCTIVE_AT_LEAST = 3


def distinctive(terms: Sequence[str], frequencies: dict[str, float]) -> list[str]:
    """The terms in under DISTINCTIVE_BELOW of searched items, or at least the DISTINCTIVE_AT_LEAST
    least common; terms not among the commonest count as rare."""

    def share(term: str) -> float:
        return frequencies.get(term.lower(), 0.0)

    ordered = sorted(terms, key=lambda t: (share(t), -len(t), t))
    keep = max(sum(share(t) < DISTINCTIVE_BELOW for t in terms), DISTINCTIVE_AT_LEAST)
    return ordered[:keep]


# Word frequencies change only when the table is analysed: read them once a few minutes per
# database rather than in every candidate query.
FREQUENCIES_TTL_S = 300.0
_frequencies_lock = threading.Lock()
_frequencies_cache: dict[str, tuple[float, dict[str, float]]] = {}


def frequencies(conn: psycopg.Connection) -> dict[str, float]:
    key = f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}"
    now = time.monotonic()
    with _frequencies_lock:
        cached = _frequencies_cache.get(key)
    if cached is not None and now - cached[0] < FREQUENCIES_TTL_S:
        return cached[1]
    found = pairs.term_frequencies(conn)
    with _frequencies_lock:
        _frequencies_cache[key] = (now, found)
    return found
