"""Which items pairing searches, and as what (domain.pairing_role)."""

import pytest

from tracker.domain import Prediction, pairing_role


def predicted(label: str, **probabilities: float) -> Prediction:
    return Prediction(label, max(probabilities.values()), probabilities)


@pytest.mark.parametrize("kind", ["official", "factcheck"])
@pytest.mark.parametrize("label", ["rumour", "clarification", "other"])
def test_official_and_fact_checking_feeds_give_clarifications_whatever_the_label(
    kind: str, label: str
) -> None:
    prediction = predicted(label, **{label: 0.9})
    assert pairing_role(kind, prediction, 0.2) == "clarification"


@pytest.mark.parametrize("kind", ["media", "social", "other"])
def test_a_rumour_of_another_feed_is_a_claim(kind: str) -> None:
    assert pairing_role(kind, predicted("rumour", rumour=0.4, other=0.3), 0.9) == "rumour"


def test_an_item_labelled_other_is_a_claim_from_the_rumour_probability_floor() -> None:
    assert pairing_role("social", predicted("other", other=0.7, rumour=0.25), 0.2) == "rumour"
    assert pairing_role("social", predicted("other", other=0.85, rumour=0.15), 0.2) is None


def test_a_clarification_in_a_news_feed_is_searched_as_one() -> None:
    assert pairing_role("media", predicted("clarification", clarification=0.6), 0.2) == (
        "clarification"
    )
