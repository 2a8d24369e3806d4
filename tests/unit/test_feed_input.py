"""FeedIn, the API's body for a new feed, read by the Feeds page's form too
(tracker.usecases.feed_admin.feed_in): the API's limits, in the page's words."""

import pytest

from tracker.usecases.feed_admin import FeedIn, FeedInputError, feed_in


def test_a_valid_form_is_the_apis_model() -> None:
    given = feed_in({"url": "https://a.example/f", "kind": "media", "tags": ["x", "y"]})
    assert given == FeedIn(url="https://a.example/f", kind="media", tags=["x", "y"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "blog"}, "kind must be one of official, factcheck, media, social, other"),
        ({"tags": [str(n) for n in range(51)]}, "tags: List should have at most 50 items"),
        ({"title": "t" * 301}, "title: String should have at most 300 characters"),
    ],
)
def test_an_invalid_field_is_a_feed_input_error(fields: dict[str, object], message: str) -> None:
    with pytest.raises(FeedInputError, match=message):
        feed_in({"url": "https://a.example/f", **fields})
