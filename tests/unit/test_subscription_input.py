"""The one model for an alert subscription's input (tracker.usecases.subscriptions), which the
Alerts page (texts of form fields) and `tracker alerts subscribe` (repeated options) both build:
the same rules whichever way the values arrive, and one first problem with a type and a
sentence for the user."""

from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from tracker.usecases.subscriptions import (
    DAILY_TIME,
    DAILY_TIME_UNUSED,
    MAX_VALUE_CHARS,
    MAX_VALUES,
    ONE_TARGET,
    Problem,
    SubscriptionInput,
    problem,
)


def refusal(**fields: Any) -> Problem:
    with pytest.raises(ValidationError) as caught:
        SubscriptionInput.model_validate({"email": "desk@example.org", **fields})
    return problem(caught.value)


def test_form_texts_and_option_lists_give_the_same_rule() -> None:
    typed = SubscriptionInput.model_validate(
        {
            "email": "Desk@Example.org",
            "keywords": "F-16\navioane militare; Ucraina,",
            "tags": "defence",
            "feed_kinds": ["media"],
            "languages": "ro  EN-gb,uk",
            "min_score": " 0.7 ",
            "delivery": "daily",
            "daily_at": "7:30",
            "time_zone": " Europe/Bucharest ",
        }
    )
    listed = SubscriptionInput.model_validate(
        {
            "email": "desk@example.org",
            "keywords": ["F-16", "avioane militare", "Ucraina"],
            "tags": ["defence"],
            "feed_kinds": ["media"],
            "languages": ["ro", "en_GB", "uk"],
            "min_score": 0.7,
            "delivery": "daily",
            "daily_at": time(7, 30),
            "time_zone": "Europe/Bucharest",
        }
    )
    assert typed == listed
    rule = typed.rule()
    assert (rule.email, rule.kind, rule.languages) == (
        "desk@example.org",
        "rumours",
        ["ro", "en", "uk"],
    )
    assert (rule.min_probability, rule.digest_at, rule.time_zone) == (
        0.7,
        time(7, 30),
        "Europe/Bucharest",
    )


def test_a_daily_digest_defaults_to_eight_and_other_deliveries_have_no_time() -> None:
    daily = SubscriptionInput(email="a@x.org", tags=["t"], delivery="daily")
    assert daily.rule().digest_at == time(8, 0)
    assert SubscriptionInput(email="a@x.org", tags=["t"]).rule().digest_at is None
    assert refusal(tags=["t"], daily_at="07:30").type == DAILY_TIME_UNUSED


def test_the_kind_follows_from_the_target() -> None:
    assert SubscriptionInput(email="a@x.org", story_id=3).rule().kind == "story"
    assert SubscriptionInput(email="a@x.org", item_id=4).rule().kind == "story"
    assert SubscriptionInput(email="a@x.org", ops=True).rule().kind == "ops"
    assert refusal(story_id=3, ops=True).type == ONE_TARGET
    assert "rumour subscriptions only" in refusal(item_id=4, keywords=["F-16"]).message


def test_an_empty_rumour_rule_only_on_purpose() -> None:
    assert "an empty rule would email you every rumour" in refusal(keywords="  ,\n ").message
    everything = SubscriptionInput(email="a@x.org", every_rumour=True).rule()
    assert (everything.kind, list(everything.keywords)) == ("rumours", [])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "desk.example.org"}, "Not an email address: 'desk.example.org'."),
        ({"email": "a@x.org\r\nBcc: b@y.org"}, "Not an email address"),
        ({"keywords": "F-16, !!!"}, "The keyword '!!!' has no letters or digits."),
        ({"tags": ",".join(["t"] * (MAX_VALUES + 1))}, f"At most {MAX_VALUES} tags"),
        ({"keywords": ["k" * (MAX_VALUE_CHARS + 1)]}, "A keyword may have at most"),
        ({"feed_kinds": ["blog"]}, "Unknown feed kind 'blog'; choose from official,"),
        ({"languages": "ro, English!"}, "'english!' is not a language code (like en, ro or uk)."),
        ({"min_score": "lots"}, "The minimum score must be a number, got 'lots'."),
        ({"min_score": "nan"}, "The minimum score must be between 0 and 1."),
        ({"min_score": 1.5}, "The minimum score must be between 0 and 1."),
        ({"delivery": "weekly"}, "Delivery must be one of immediate, hourly, daily."),
        ({"delivery": "daily", "daily_at": "25:00"}, "must be HH:MM (like 07:30), got '25:00'."),
        ({"time_zone": "Mars/{x}"}, "Unknown time zone 'Mars/{x}': use an IANA name"),
    ],
)
def test_a_bad_value_is_refused_with_a_sentence_for_the_user(
    fields: dict[str, Any], message: str
) -> None:
    found = refusal(**{"tags": ["defence"], **fields})
    assert message in found.message


def test_a_bad_daily_time_has_a_type_the_cli_words_itself() -> None:
    assert refusal(tags=["t"], delivery="daily", daily_at="7.30pm").type == DAILY_TIME
