"""Reading what a person types for an alert subscription: `tracker alerts` and the Alerts page.

Each reader returns the normalised value, or None (or the offending values) when it is not valid,
so the CLI and the web form word the problem in their own terms (an option or a form field) while
accepting exactly the same rules."""

import functools
import re
from datetime import time
from zoneinfo import available_timezones

from tracker import domain
from tracker.domain import FEED_KINDS

DELIVERIES = ("immediate", "hourly", "daily")
_HH_MM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def unknown_feed_kinds(kinds: list[str]) -> list[str]:
    return sorted(set(kinds) - set(FEED_KINDS))


def language_code(value: str) -> str | None:
    """The primary subtag of a language code (domain.language_code: "en" for "en-GB" or
    "en_GB"): items are matched on that, so it is what we store."""
    code = domain.language_code(value)
    return domain.primary_language(code) if code else None


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
