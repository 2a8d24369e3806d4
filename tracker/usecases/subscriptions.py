"""Alert subscriptions as a person asks for them: `tracker alerts subscribe` and the Alerts page.

One model, SubscriptionInput, reads and checks what was typed (keywords, tags, feed kinds,
languages, minimum score, delivery, daily time, time zone, a followed story or item, ops), so
both callers accept exactly the same rules; each shows a refusal in its own terms (a form
message, an `error:` line), worded from the error's message or, for its own option names, from
the error's type. `subscribe` stores a valid subscription with its audit row."""

import functools
import math
import re
from dataclasses import dataclass, replace
from datetime import time
from typing import Any, Self
from zoneinfo import available_timezones

import psycopg
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from classifiers.text import WORD, fold
from tracker import domain
from tracker.domain import FEED_KINDS
from tracker.storage import audit, subscriptions, users
from tracker.storage.subscriptions import Rule
from tracker.usecases.refused import Refused

DELIVERIES = ("immediate", "hourly", "daily")
DEFAULT_DAILY_AT = time(8, 0)
MAX_VALUES = 50  # keywords, tags or languages in one rule
MAX_VALUE_CHARS = 200
# A form field holds several values in one text; a repeated CLI option gives a list instead.
SEPARATORS = re.compile(r"[\n,;]+")
LANGUAGE_SEPARATORS = re.compile(r"[\s,;]+")
_HH_MM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")

# Error types a caller may word in its own terms (the CLI names its options); every other
# refusal is shown with its message.
DAILY_TIME = "daily_time"
DAILY_TIME_UNUSED = "daily_time_unused"
ONE_TARGET = "one_target"


class SubscriptionRefused(Refused):
    """A valid subscription the database refuses, in words for the user."""


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with the input: its error type, and a sentence for the user."""

    type: str
    message: str


def problem(error: ValidationError) -> Problem:
    # One problem at a time, as both callers have always shown it: the first field's.
    first = error.errors()[0]
    return Problem(first["type"], first["msg"])


def _refuse(error_type: str, message: str) -> PydanticCustomError:
    # The message is passed as a template without context, so braces typed by the user are
    # shown as they are.
    return PydanticCustomError(error_type, message)


class SubscriptionInput(BaseModel):
    """One subscription as typed: a rumour rule (filters), a followed story or rumour item, or
    ops alerts. List fields take a list or the text of one form field (split on separators);
    the minimum score a number or its text; the daily time a time or "HH:MM"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    user_id: int | None = None
    keywords: list[str] = []
    tags: list[str] = []
    feed_kinds: list[str] = []
    languages: list[str] = []
    min_score: float = 0.5
    delivery: str = "immediate"
    # None: 08:00 for a daily digest; given for another delivery, it is refused.
    daily_at: time | None = None
    time_zone: str = "UTC"
    story_id: int | None = None
    item_id: int | None = None
    ops: bool = False
    # An empty rumour rule emails every rumour: only on purpose (the CLI's "none = all"); the
    # web form, easy to submit half-filled, leaves it False and refuses an empty rule.
    every_rumour: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        # Header injection and lists of addresses are refused; the rest is the mail server's.
        if "@" not in value or any(c in value for c in "\r\n <>"):
            raise _refuse("email", f"Not an email address: {value!r}.")
        return users.normalise_email(value)

    @field_validator("keywords", "tags", "languages", mode="before")
    @classmethod
    def _split(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        separators = LANGUAGE_SEPARATORS if info.field_name == "languages" else SEPARATORS
        return [v.strip() for v in separators.split(value) if v.strip()]

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, values: list[str]) -> list[str]:
        found = _bounded(values, "keyword")
        for keyword in found:
            # A keyword without letters or digits would never match anything.
            if not WORD.findall(fold(keyword)):
                raise _refuse("keyword", f"The keyword {keyword!r} has no letters or digits.")
        return found

    @field_validator("tags")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        return _bounded(values, "tag")

    @field_validator("feed_kinds")
    @classmethod
    def _feed_kinds(cls, values: list[str]) -> list[str]:
        bad = unknown_feed_kinds(values)
        if bad:
            choose = ", ".join(FEED_KINDS)
            raise _refuse("feed_kind", f"Unknown feed kind {bad[0]!r}; choose from {choose}.")
        return values

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        found = []
        for value in _bounded(values, "language"):
            code = language_code(value)
            if code is None:
                message = f"{value.lower()!r} is not a language code (like en, ro or uk)."
                raise _refuse("language", message)
            found.append(code)
        return found

    @field_validator("min_score", mode="before")
    @classmethod
    def _score_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return float(value.strip() or "0.5")
        except ValueError:
            message = f"The minimum score must be a number, got {value!r}."
            raise _refuse("min_score", message) from None

    @field_validator("min_score")
    @classmethod
    def _score_range(cls, value: float) -> float:
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise _refuse("min_score", "The minimum score must be between 0 and 1.")
        return value

    @field_validator("delivery")
    @classmethod
    def _delivery(cls, value: str) -> str:
        if value not in DELIVERIES:
            raise _refuse("delivery", f"Delivery must be one of {', '.join(DELIVERIES)}.")
        return value

    @field_validator("daily_at", mode="before")
    @classmethod
    def _daily_at(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = daily_time(value)
        if found is None:
            message = f"The daily digest time must be HH:MM (like 07:30), got {value!r}."
            raise _refuse(DAILY_TIME, message)
        return found

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        found = time_zone(value)
        if found is None:
            message = f"Unknown time zone {value!r}: use an IANA name like Europe/Bucharest or UTC."
            raise _refuse("time_zone", message)
        return found

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if sum([self.story_id is not None, self.item_id is not None, self.ops]) > 1:
            raise _refuse(ONE_TARGET, "Choose one of a story, a rumour item and ops alerts.")
        filtered = bool(self.keywords or self.tags or self.feed_kinds or self.languages)
        if self.kind != "rumours" and filtered:
            message = "Keyword, tag, kind and language filters apply to rumour subscriptions only."
            raise _refuse("filters", message)
        if self.kind == "rumours" and not filtered and not self.every_rumour:
            raise _refuse(
                "empty_rule",
                "Give at least one keyword, tag, feed kind or language: an empty rule would "
                "email you every rumour.",
            )
        if self.delivery != "daily" and self.daily_at is not None:
            raise _refuse(DAILY_TIME_UNUSED, "A digest time is for a daily digest only.")
        return self

    @property
    def kind(self) -> str:
        if self.ops:
            return "ops"
        return "story" if self.story_id is not None or self.item_id is not None else "rumours"

    def rule(self) -> Rule:
        """The storage rule this input asks for."""
        daily = self.delivery == "daily"
        return Rule(
            email=self.email,
            user_id=self.user_id,
            kind=self.kind,
            keywords=self.keywords,
            tags=self.tags,
            feed_kinds=self.feed_kinds,
            languages=self.languages,
            min_probability=self.min_score,
            delivery=self.delivery,
            digest_at=(self.daily_at or DEFAULT_DAILY_AT) if daily else None,
            time_zone=self.time_zone,
            story_id=self.story_id,
            item_id=self.item_id,
        )


def _bounded(values: list[str], what: str) -> list[str]:
    if len(values) > MAX_VALUES:
        raise _refuse("too_many", f"At most {MAX_VALUES} {what}s in one subscription.")
    for value in values:
        if len(value) > MAX_VALUE_CHARS:
            raise _refuse("too_long", f"A {what} may have at most {MAX_VALUE_CHARS} characters.")
    return values


def subscribe(
    conn: psycopg.Connection, given: SubscriptionInput, actor: str, action: str = "alerts.subscribe"
) -> int:
    """Store the subscription (the same rule again is re-activated) and its audit row, in the
    caller's transaction; its id. SubscriptionRefused when ops alerts are asked for an address
    that is no admin's, or the followed story or item does not exist."""
    rule = given.rule()
    if rule.kind == "ops":
        rule = _admins_ops_rule(conn, rule)
    try:
        sub_id = subscriptions.subscribe(conn, rule)
    except psycopg.errors.ForeignKeyViolation as exc:
        raise SubscriptionRefused("missing", "There is no such story or item.") from exc
    audit.record(conn, actor, action, f"subscription:{sub_id}")
    return sub_id


def _admins_ops_rule(conn: psycopg.Connection, rule: Rule) -> Rule:
    # Ops alerts name feeds, workers and backlogs: only for an admin's account, tied to it.
    user = users.get_by_email(conn, rule.email)
    if user is None or user.role != "admin":
        message = f"Ops alerts are for admins; {rule.email} is not an admin user."
        raise SubscriptionRefused("invalid", message)
    return replace(rule, user_id=user.id)


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
