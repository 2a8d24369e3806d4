"""Inputs tried by the hostile-input tests, per group, for the summary line at the end of a run.

A property or payload check runs inside `counted(group)`: every input counts as tried, and one
whose check raised counts as failed (hypothesis retries a failing input while shrinking it, so a
real failure counts more than once; a passing run reports zero)."""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

TRIED: Counter[str] = Counter()
FAILED: Counter[str] = Counter()


@contextmanager
def counted(group: str) -> Iterator[None]:
    TRIED[group] += 1
    try:
        yield
    except Exception:  # not hypothesis's own BaseExceptions (data exhausted, stop)
        FAILED[group] += 1
        raise


def summary() -> str:
    groups = ", ".join(f"{g} {TRIED[g]}/{FAILED[g]}" for g in sorted(TRIED))
    return (
        f"hostile input: {sum(TRIED.values())} inputs tried, {sum(FAILED.values())} failed "
        f"(group tried/failed: {groups})"
    )
