"""Domain types shared by every layer. Imports nothing of ours."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

FeedKind = Literal["official", "factcheck", "media", "social", "other"]
Label = Literal["rumour", "clarification", "other"]
PairStatus = Literal["suggested", "confirmed", "rejected"]
Role = Literal["admin", "analyst", "viewer"]

FEED_KINDS: tuple[str, ...] = get_args(FeedKind)
LABELS: tuple[str, ...] = get_args(Label)
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True)
class Feed:
    id: int
    url: str
    title: str | None
    kind: str
    language: str | None
    enabled: bool
    status: str
    last_error: str | None
    error_count: int
    next_poll_at: datetime
    last_polled_at: datetime | None
    etag: str | None
    last_modified: str | None


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


@dataclass(frozen=True)
class TextForModel:
    """What the classifiers see of an item."""

    title: str
    summary: str
    feed_kind: str = "other"
    language: str | None = None


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PairScore:
    score: float
    shared_terms: tuple[str, ...]
