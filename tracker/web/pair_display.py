"""How a pair's two sides are shown: by the queue, the pairs list and the pair page (the
templates call these), pure functions over a stored pair."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.storage.pairs import PairView


@dataclass(frozen=True)
class Side:
    """One half of a pair as the page shows it (rumour or clarification)."""

    label: str
    title: str
    summary: str
    url: str | None
    feed: str
    kind: str
    seen_at: datetime
    outlets: int | None


def sides(pair: PairView) -> tuple[Side, Side]:
    outlets = pair.story_outlets if pair.story_id is not None else None
    rumour = Side(
        "Rumour",
        pair.rumour_title,
        pair.rumour_summary,
        http_url(pair.rumour_url),
        pair.rumour_feed,
        pair.rumour_kind,
        pair.rumour_seen_at,
        outlets,
    )
    clarification = Side(
        "Clarification",
        pair.clarification_title,
        pair.clarification_summary,
        http_url(pair.clarification_url),
        pair.clarification_feed,
        pair.clarification_kind,
        pair.clarification_seen_at,
        None,
    )
    return rumour, clarification


def http_url(url: str | None) -> str | None:
    # Autoescaping does not stop `javascript:` links; item URLs come from untrusted feeds.
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


def shared_terms(explanation: dict[str, Any]) -> list[str]:
    terms = explanation.get("shared_terms")
    return [str(term) for term in terms] if isinstance(terms, list) else []
