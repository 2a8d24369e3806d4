"""Reading what a person types for an alert subscription: `tracker alerts` and the Alerts page.

Each reader returns the normalised value, or None (or the offending values) when it is not valid,
so the CLI and the web form word the problem in their own terms (an option or a form field) while
accepting exactly the same rules."""

import functools
import re
from datetime import time
from zoneinfo import available_timezones

from tracker.domain import FEED_KINDS

DELIVERIES = ("immediate", "hourly", "daily")
_HH_MM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_LANGUAGE = re.compile(r"([a-z]{2,3})(-[a-z0-9]{1,8})*")


def unknown_feed_kinds(kinds: list[str]) -> list[str]:
    return sorted(set(kinds) - set(FEED_KINDS))


def language_code(value: str) -> str | None:
    """The primary subtag ("en" for "en-GB"): items are matched on that, so it is what we store."""
    match = _LANGUAGE.fullmatch(value.strip().lower())
    return match.group(1) if match else None


def daily_time(text: str) -> time | None:
    match = _HH_MM.fullmatch(text.strip())
    return time(int(match.group(1)), int(match.group(2))) if match else None


@functools.cache
def time_zones() -> list[str]:
    # Read from the system's zone files once; membership is also the validity check.
    return sorted(available_timezones())


def time_zone(name: str) -> str | None:
    name = name.strip()
    return name if name in time_zones() else None
