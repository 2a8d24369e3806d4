"""The context of similar earlier items (classifiers/context.py), on hand-made predictions."""

from datetime import UTC, datetime, timedelta

import pytest

from classifiers import context
from tracker.domain import Prediction, TextForModel

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
WAVE = "Romanian F-16 jets fly secret night missions over Odesa from the Borcea air base"
UNSURE = {"rumour": 0.35, "clarification": 0.05, "other": 0.6}
RUMOUR = {"rumour": 0.9, "clarification": 0.02, "other": 0.08}
OTHER = {"rumour": 0.05, "clarification": 0.05, "other": 0.9}


def text(title: str, hours: float = 0.0) -> TextForModel:
    return TextForModel(title, "", "social", "en", seen_at=T0 + timedelta(hours=hours))


def prediction(probabilities: dict[str, float]) -> Prediction:
    label = max(probabilities, key=lambda k: probabilities[k])
    return Prediction(label, probabilities[label], dict(probabilities))


def earlier(title: str, probabilities: dict[str, float], hours: float) -> context.Earlier:
    return context.Earlier(text(title, hours), probabilities)


WAVE_BEFORE = [
    earlier(f"{WAVE}, posts say", RUMOUR, -3),
    earlier(f"Sources: {WAVE}", RUMOUR, -2),
    earlier(f"{WAVE} tonight?", RUMOUR, -1),
]
UNRELATED = [earlier("Bread prices rise in Cluj bakeries after the flour tax", OTHER, -1)]


def blended(new: TextForModel, own: dict[str, float], known: list[context.Earlier]) -> Prediction:
    [found] = context.with_context([new], [prediction(own)], known)
    return found


def test_an_item_alone_keeps_the_models_prediction() -> None:
    found = blended(text(WAVE), UNSURE, [])
    assert found.label == "other"
    assert found.probabilities == pytest.approx(UNSURE)


def test_an_item_repeating_earlier_rumours_becomes_a_rumour() -> None:
    found = blended(text(f"Witnesses: {WAVE}"), UNSURE, WAVE_BEFORE + UNRELATED)
    assert found.label == "rumour"
    assert found.probabilities["rumour"] > 0.6
    assert sum(found.probabilities.values()) == pytest.approx(1.0, abs=1e-3)


def test_unrelated_earlier_items_change_nothing() -> None:
    found = blended(text(WAVE), UNSURE, UNRELATED)
    assert found.probabilities == pytest.approx(UNSURE)


def test_a_denial_of_the_rumours_stays_a_clarification() -> None:
    own = {"rumour": 0.2, "clarification": 0.6, "other": 0.2}
    found = blended(text(f"Ministry denies that {WAVE}: false"), own, WAVE_BEFORE)
    assert found.label == "clarification"
    assert found.probabilities["clarification"] == pytest.approx(0.6)


def test_only_earlier_items_within_the_window_count() -> None:
    later = [earlier(e.text.title, RUMOUR, 5) for e in WAVE_BEFORE]
    stale_hours = -context.WINDOW.total_seconds() / 3600 - 1
    stale = [earlier(e.text.title, RUMOUR, stale_hours) for e in WAVE_BEFORE]
    assert blended(text(WAVE), UNSURE, later + stale).probabilities == pytest.approx(UNSURE)


def test_new_items_see_the_new_items_before_them_in_time_not_in_position() -> None:
    first, second = text(f"{WAVE}, posts say", 0), text(f"Sources: {WAVE}", 1)
    own = [prediction(RUMOUR), prediction(UNSURE)]
    in_order = context.with_context([first, second], own, [])
    reversed_ = context.with_context([second, first], own[::-1], [])
    assert in_order[1].label == reversed_[0].label == "rumour"
    # The first in time has nothing before it: the unsure second item cannot pull it down.
    assert in_order[0].probabilities == pytest.approx(RUMOUR)


def test_earlier_others_pull_a_leaning_rumour_down() -> None:
    news = [earlier(e.text.title, OTHER, -1) for e in WAVE_BEFORE]
    own = {"rumour": 0.55, "clarification": 0.05, "other": 0.4}
    assert blended(text(WAVE), own, news).label == "other"
