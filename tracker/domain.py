"""Domain types and rules shared by every layer. Imports nothing of ours."""

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

import numpy as np

FeedKind = Literal["official", "factcheck", "media", "social", "other"]
Label = Literal["rumour", "clarification", "other"]
PairStatus = Literal["suggested", "confirmed", "rejected"]
Role = Literal["admin", "analyst", "viewer"]

FEED_KINDS: tuple[str, ...] = get_args(FeedKind)
LABELS: tuple[str, ...] = get_args(Label)
ROLES: tuple[str, ...] = get_args(Role)

# A language tag as feeds, OPML files and people write it: BCP 47's shape (RFC 5646), a primary
# language subtag of 2 or 3 letters and any subtags of 1 to 8 letters or digits, with POSIX's
# "_" also taken as the separator. The pattern is also the API's (OpenAPI) query pattern.
LANGUAGE_TAG_PATTERN = r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*"
# RFC 5646 4.4.1: 35 characters hold any tag without extensions or private use; feeds.parse
# keeps a feed's declared language to the same length.
MAX_LANGUAGE_CHARS = 35
_LANGUAGE_TAG = re.compile(LANGUAGE_TAG_PATTERN)


def language_code(value: str | None) -> str | None:
    """`value` as a language code: stripped, lower case, subtags joined by "-" ("pt_BR" ->
    "pt-br", " EN-gb " -> "en-gb"); None when it is not one ("English", "en us", "", None).

    The one rule for the web filters and forms, the API, the CLI, OPML import, alert rules and
    declared languages. Real feeds carry "en", "en-US", "EN", "zh-Hant-TW", "es-419" and
    locale-style "pt_BR", so case, "_" and any number of subtags are accepted and normalised
    away (stored and filtered values then compare equal). The primary subtag is 2 or 3 letters,
    as ISO 639 has them and every language in the IANA registry: longer words ("english",
    "deutsch") are names, not codes, and would match no item, whose language is an ISO 639-1
    code once detected (classifiers.language)."""
    text = (value or "").strip()
    if len(text) > MAX_LANGUAGE_CHARS or not _LANGUAGE_TAG.fullmatch(text):
        return None
    return text.lower().replace("_", "-")


def primary_language(code: str) -> str:
    """The primary subtag of a code from language_code ("en" for "en-gb"): what items are
    matched on by alert rules and the item filters."""
    return code.split("-", 1)[0]


@dataclass(frozen=True)
class Feed:
    id: int
    url: str
    title: str | None
    kind: str
    language: str | None
    tags: list[str]
    enabled: bool
    status: str
    last_error: str | None
    error_count: int
    failing_since: datetime | None
    disabled_reason: str | None
    poll_interval_s: int
    min_interval_s: int
    max_interval_s: int
    next_poll_at: datetime
    last_polled_at: datetime | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None


@dataclass(frozen=True)
class ParsedEntry:
    """One entry as parsed from a feed, before it is stored."""

    dedupe_key: str
    guid: str | None
    url: str | None
    title: str
    summary: str
    language: str | None
    published_at: datetime | None
    content_hash: str
    # Sanitised HTML of the full content (nh3), for display; summary stays plain text.
    content_html: str = ""
    author: str | None = None
    updated_at: datetime | None = None
    categories: tuple[str, ...] = ()
    enclosures: tuple[str, ...] = ()
    # Fingerprint of the normalised text, set before storing; links cross-feed duplicates.
    text_hash: str | None = None


@dataclass(frozen=True)
class TextForModel:
    """What the classifiers see of an item."""

    title: str
    summary: str
    feed_kind: str = "other"
    language: str | None = None
    # Only the pair model reads these: the time between a rumour and its clarification, and
    # whether the clarification names the rumour's author.
    seen_at: datetime | None = None
    author: str | None = None
    # The item's sentence vector (classifiers.embedder), when stored or computed already.
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PairScore:
    score: float
    shared_terms: tuple[str, ...]


# Feeds whose items answer rumours by what they are: a ministry's statement or a fact-check is
# a clarification candidate whatever the item classifier makes of its wording.
CLARIFYING_KINDS: tuple[str, ...] = ("official", "factcheck")
# The rumour probability from which an item of another feed is a claim to pair
# (TRACKER_PAIR_CLAIM_MIN_RUMOUR). Every such item by default: on CheckThat! `devtest` claims
# served as a social feed, the shipped item model gave 23 of 202 real claims a rumour
# probability under 0.2, and 140 its label other (docs/models.md, "Pairing what the eval pairs").
DEFAULT_CLAIM_MIN_RUMOUR = 0.0


def pairing_role(feed_kind: str, prediction: Prediction, claim_min_rumour: float) -> str | None:
    """What pairing searches an item as: `clarification` (matched against claims), `rumour` (a
    claim matched against clarifications and grouped into stories), or None (not paired).
    Items of other feeds are claims when the classifier calls them rumours or gives the rumour
    label at least `claim_min_rumour`: the re-ranker's score then decides whether a
    clarification answers them."""
    if feed_kind in CLARIFYING_KINDS or prediction.label == "clarification":
        return "clarification"
    if prediction.label == "rumour":
        return "rumour"
    if prediction.probabilities.get("rumour", 0.0) >= claim_min_rumour:
        return "rumour"
    return None
