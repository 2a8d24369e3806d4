"""The language detector: what a text is written in, and the declared languages it falls back
to when the text is too short or the model is unsure. The samples are written for this test."""

import pytest

from classifiers import language

ROMANIAN = (
    "Ministerul Apărării Naționale precizează că informațiile apărute în presă despre "
    "avioanele F-16 au fost prezentate în mod distorsionat și nu corespund realității."
)
UKRAINIAN = (
    "Міністерство оборони заявляє, що повідомлення про нібито таємні польоти літаків "
    "над містом не відповідають дійсності і є частиною інформаційної кампанії."
)
RUSSIAN = (
    "В социальных сетях распространяется сообщение о том, что военные самолёты якобы "
    "тайно летают над городом, однако официальные источники это опровергают."
)
ENGLISH = (
    "The Ministry of National Defence states that the information about the aircraft was "
    "misrepresented and does not reflect what actually happened over the border."
)


@pytest.mark.parametrize(
    ("text", "expected"), [(ROMANIAN, "ro"), (UKRAINIAN, "uk"), (RUSSIAN, "ru"), (ENGLISH, "en")]
)
def test_a_text_long_enough_is_given_the_language_it_is_written_in(
    text: str, expected: str
) -> None:
    # Declared otherwise on purpose: a confident detection wins over what the feed says.
    assert language.detect(text, "de", "fr") == expected


def test_a_romanian_statement_in_a_feed_tagged_english_is_romanian() -> None:
    assert language.detect(language.item_text("Precizare", ROMANIAN), "en", "en") == "ro"


def test_a_short_title_keeps_the_declared_language() -> None:
    assert language.detect("F-16 la graniță", "ro-RO", "en") == "ro"
    assert language.detect("Breaking", None, "uk") == "uk"


def test_text_the_model_is_unsure_of_falls_back_to_the_declared_language() -> None:
    names = "Nasal Steroids Dr. Larry Kalish: Nasal Steroids"
    guess = language.identify(names)
    assert guess.letters >= language.MIN_LETTERS and guess.confidence < language.MIN_CONFIDENCE
    assert language.detect(names, "en-AU") == "en"


def test_addresses_handles_and_tags_are_not_read_as_words() -> None:
    noisy = "@ministry_ro #F16 https://example.org/a/very/long/path/with/words/in/it www.x.ro"
    assert language.identify(noisy).letters == 0
    assert language.detect(noisy, None, "ro") == "ro"


def test_declared_languages_are_read_as_their_primary_subtag() -> None:
    assert [language.declared(t) for t in ("en-US", "EN_gb", "ro", " uk ", "fil")] == [
        "en",
        "en",
        "ro",
        "uk",
        "fil",
    ]
    assert [language.declared(t) for t in ("English", "", None, "e", "x-klingon")] == [None] * 5


def test_an_unusable_declaration_falls_through_to_the_feed_and_then_to_none() -> None:
    assert language.detect("OK", "English", "ro") == "ro"
    assert language.detect("OK", None, None) is None


def test_a_label_without_a_two_letter_code_is_never_returned() -> None:
    # Whatever the model answers for this text, what comes back is a code of the kind we store.
    found = language.detect("Dramatic video of gunfire from inside Parliament Hill:", "en")
    assert found is not None and len(found) == 2


def test_a_long_text_is_read_up_to_a_bound() -> None:
    assert len(language.clean(ENGLISH * 100)) <= language.MAX_CHARS
    assert language.detect(ENGLISH * 100 + ROMANIAN * 100) == "en"
