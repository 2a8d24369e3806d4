"""The one rule for "is this a language code" (tracker.domain.language_code) and the places that
read it: feed forms and the CLI, alert rules, the queue and item filters, the API, OPML import
and the declared languages detection falls back to. The cases are the ones the five earlier
rules disagreed on."""

from typing import Annotated

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from classifiers import language
from tracker.domain import LANGUAGE_TAG_PATTERN, MAX_LANGUAGE_CHARS, language_code
from tracker.ingest.opml import parse_opml
from tracker.usecases import feed_admin, subscriptions
from tracker.web.item_views import parse_search
from tracker.web.review_filters import review_filter

# value -> the code it is, or None. Comments name the old rules that disagreed.
CASES: list[tuple[str, str | None]] = [
    ("en", "en"),
    ("RO", "ro"),
    ("fil", "fil"),  # a three-letter ISO 639 code
    ("en-GB", "en-gb"),  # the API refused any subtag
    ("pt_BR", "pt-br"),  # only OPML took "_" (kept as written); the forms refused it
    ("EN_gb", "en-gb"),
    ("zh-Hant-TW", "zh-hant-tw"),  # feed forms took one subtag at most
    ("de-CH-1901", "de-ch-1901"),
    ("es-419", "es-419"),
    ("en-a-bbb", "en-a-bbb"),  # feed forms wanted subtags of 2 characters or more
    ("english", None),  # OPML and the API took 2 to 8 letters: a name, not a code
    ("Deutsch", None),
    ("e", None),
    ("en us", None),
    ("en-", None),
    ("-en", None),
    ("en--gb", None),
    ("en-gb-", None),
    ("en-abcdefghi", None),  # a subtag of 9
    ("en.gb", None),
    ("\u0440\u0443", None),  # ru in Cyrillic letters: letters, but not ASCII ones
    ("en-ĝb", None),
    ("en\x00", None),
    ("<x>", None),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_a_language_code_is_read_by_one_rule(value: str, expected: str | None) -> None:
    assert language_code(value) == expected


def test_surrounding_whitespace_is_ignored_and_nothing_is_no_code() -> None:
    assert language_code(" PT-BR ") == "pt-br"
    assert language_code("ro\n") == "ro"
    assert [language_code(v) for v in ("", "   ", None)] == [None, None, None]


def test_a_code_may_be_as_long_as_rfc_5646_asks_to_hold_and_no_longer() -> None:
    longest = "zh-" + "-".join(["abcdefgh"] * 3) + "-abcde"
    assert len(longest) == MAX_LANGUAGE_CHARS
    assert language_code(longest) == longest
    assert language_code(longest + "e") is None


@pytest.mark.parametrize(("value", "expected"), [c for c in CASES if c[0] == c[0].strip()])
def test_the_api_query_pattern_accepts_what_the_rule_accepts(
    value: str, expected: str | None
) -> None:
    # Pydantic checks the pattern with its own regex engine: it must agree with Python's.
    api = TypeAdapter(
        Annotated[str, Field(max_length=MAX_LANGUAGE_CHARS, pattern=f"^{LANGUAGE_TAG_PATTERN}$")]
    )
    if expected is None:
        with pytest.raises(ValidationError):
            api.validate_python(value)
    else:
        assert language_code(api.validate_python(value)) == expected


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_every_reader_agrees_with_the_rule(value: str, expected: str | None) -> None:
    primary = expected.split("-")[0] if expected else None
    # A feed's language (web form, API, CLI): the whole code, or the caller's error.
    if expected is None:
        with pytest.raises(feed_admin.FeedInputError, match="is not a language code like en"):
            feed_admin.language_code(value)
    else:
        assert feed_admin.language_code(value) == expected
    # Alert rules and detection's fallback: the primary subtag.
    assert subscriptions.language_code(value) == primary
    assert language.declared(value) == primary
    # The review queue: the whole code (pairs carry both); a problem line otherwise.
    where, problems = review_filter({"language": value})
    assert where.language == expected
    assert bool(problems) == (expected is None)
    # The item search: the primary subtag, which items are matched on.
    search, problems = parse_search({"language": value})
    assert search.where.language == primary
    assert bool(problems) == (expected is None)


# Markup and NUL would make the file itself unreadable, not just its language.
WELL_FORMED = [c for c in CASES if "<" not in c[0] and "\x00" not in c[0]]


@pytest.mark.parametrize(("value", "expected"), WELL_FORMED)
def test_opml_keeps_a_code_as_written_and_drops_what_is_not_one(
    value: str, expected: str | None
) -> None:
    outline = f'<outline xmlUrl="https://a.example/rss" language="{value}"/>'
    result = parse_opml(f'<opml version="2.0"><body>{outline}</body></opml>'.encode())
    if expected is None:
        assert result.feeds[0].language is None
        assert "is not a language tag; ignored" in result.problems[0]
    else:
        assert result.problems == []
        assert result.feeds[0].language == value
        # Stored as the forms store it (feed_admin.import_opml).
        assert language_code(result.feeds[0].language) == expected


def test_a_feed_without_a_language_stores_none_rather_than_an_error() -> None:
    assert [feed_admin.language_code(v) for v in ("", "  ", None)] == ["", "", ""]
