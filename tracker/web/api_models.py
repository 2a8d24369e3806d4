"""The JSON API's request and response models (the OpenAPI document is built from these)."""

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field, model_validator

from tracker.redact import redact_text

MAX_REASON_CHARS = 1000
MAX_STORY_ITEMS = 1000
MAX_STORY_DECISIONS = 200

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page; pass `next_cursor` as `cursor` for the next one (null: this was the last)."""

    items: list[T]
    next_cursor: str | None


class PairSide(BaseModel):
    id: int
    title: str
    summary: str
    url: str | None
    feed: str
    feed_kind: str
    seen_at: datetime


class PairOut(BaseModel):
    id: int
    score: float
    status: str
    created_at: datetime
    explanation: dict[str, Any]
    rumour: PairSide
    clarification: PairSide
    story_id: int | None
    story_outlets: int | None


class DecisionIn(BaseModel):
    decision: Literal["confirm", "reject"]
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> "DecisionIn":
        if self.decision == "reject" and not (self.reason or "").strip():
            raise ValueError("a rejection needs a reason")
        return self


class ItemOut(BaseModel):
    id: int
    feed_id: int
    feed: str
    feed_kind: str
    title: str
    summary: str
    url: str | None
    language: str | None
    seen_at: datetime
    story_id: int | None
    label: str | None
    probability: float | None
    model_version: str | None


class ClassificationOut(BaseModel):
    model_version: str
    label: str
    probability: float
    created_at: datetime


class AnalystLabelOut(BaseModel):
    label: str
    user_email: str | None
    created_at: datetime


class ItemDetailOut(BaseModel):
    id: int
    feed_id: int
    feed: str
    feed_kind: str
    title: str
    summary: str
    content_html: str = Field(description="Sanitised on ingest; escape it anyway if unsure.")
    url: str | None
    author: str | None
    language: str | None
    categories: list[str]
    published_at: datetime | None
    fetched_at: datetime
    seen_at: datetime
    revision: int
    story_id: int | None
    duplicate_of: int | None
    classifications: list[ClassificationOut]
    analyst_labels: list[AnalystLabelOut]


class OutletOut(BaseModel):
    feed_id: int
    feed: str
    feed_kind: str
    items: int
    first_seen_at: datetime


class SpreadDayOut(BaseModel):
    day: date
    items: int
    outlets: int


class StoryClarificationOut(BaseModel):
    item_id: int
    title: str
    url: str | None
    feed: str
    feed_kind: str
    seen_at: datetime
    best_score: float
    confirmed: bool


class StoryDecisionOut(BaseModel):
    pair_id: int
    rumour_title: str
    clarification_title: str
    pair_status: str
    decision: str
    reason: str | None
    user_email: str | None
    created_at: datetime
    undone_at: datetime | None


class StoryOut(BaseModel):
    id: int
    title: str
    first_seen_at: datetime
    items: list[ItemOut] = Field(description=f"Newest first, at most {MAX_STORY_ITEMS}.")
    outlets: list[OutletOut]
    spread: list[SpreadDayOut] = Field(description="Items and outlets per UTC day.")
    clarifications: list[StoryClarificationOut]
    decisions: list[StoryDecisionOut] = Field(
        description=f"Reviews of the story's pairs, newest first, at most {MAX_STORY_DECISIONS}."
    )


class MergeIn(BaseModel):
    source_id: int = Field(
        ge=1, le=2**63 - 1, description="The story merged into this one (and then deleted)."
    )


class SplitIn(BaseModel):
    item_ids: list[int] = Field(
        min_length=1,
        max_length=MAX_STORY_ITEMS,
        description="Items of this story to move into a new story; at least one must stay.",
    )


# Keys and passwords a feed URL carries never leave the API (tracker.redact): admins see the
# URL whole on the feed's edit form only.
PrivateText = Annotated[str, AfterValidator(redact_text)]


class FeedOut(BaseModel):
    id: int
    url: PrivateText = Field(description="The feed's URL, with any key or password masked.")
    title: str | None
    kind: str
    language: str | None
    tags: list[str]
    enabled: bool
    status: str
    last_error: PrivateText | None
    error_count: int
    failing_since: datetime | None
    disabled_reason: PrivateText | None
    poll_interval_s: int
    last_polled_at: datetime | None
    next_poll_at: datetime


class RollbackIn(BaseModel):
    kind: Literal["item", "pair"]


class ModelOut(BaseModel):
    id: int
    kind: str
    version: str
    active: bool
    created_at: datetime
    activated_at: datetime | None
    metrics: dict[str, float] = Field(description="The numeric entries of the metadata.")
    metadata: dict[str, Any]
