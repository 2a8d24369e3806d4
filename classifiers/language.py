"""The language of an item: what its text is written in when py3langid is sure, else what the
entry or its feed declares.

py3langid ships its model inside its wheel (an LZMA-compressed npz, read without pickle), so
nothing is downloaded at run time. The model is loaded once per process, on first use.

The two floors were chosen by `tracker bench language` on real text (VoxCheck quotes in English,
Russian and Ukrainian, PHEME tweets, the real-world feeds that declare a language; docs/models.md,
"Languages"): below 20 letters (a short title, "Gyrano bedankt !") and below 0.5 normalised
probability (lists of names, "Nasal Steroids Dr. Larry Kalish") the detector is wrong often
enough that the declared language is the better guess.
"""

import re
import threading
from dataclasses import dataclass
from typing import Protocol

from tracker.domain import language_code, primary_language

MIN_LETTERS = 20
MIN_CONFIDENCE = 0.5
# Long texts add nothing after their first paragraph but cost time (linear in bytes).
MAX_CHARS = 1000
# Addresses, handles and hashtags are not words of the language the text is written in.
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


_identifier: _Identifier | None = None
_lock = threading.Lock()


def _model() -> _Identifier:
    global _identifier
    # Fetch workers run in threads: one of them loads the model (half a second), the rest wait.
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def clean(text: str) -> str:
    return " ".join(_NOISE.sub(" ", text[: MAX_CHARS * 2]).split())[:MAX_CHARS]


@dataclass(frozen=True)
class Guess:
    language: str | None  # None: a label without an ISO 639-1 code, or no letters at all
    confidence: float
    letters: int


def identify(text: str) -> Guess:
    """The model's best language for `text`, its probability and the letters it saw. Labels
    without an ISO 639-1 code (py3langid's few three-letter ones, such as Nigerian Pidgin) are
    None: on our data they were only ever confusions with English or Chinese."""
    cleaned = clean(text)
    letters = sum(ch.isalpha() for ch in cleaned)
    if not letters:
        return Guess(None, 0.0, 0)
    language, confidence = _model().classify(cleaned)
    return Guess(language if len(language) == 2 else None, confidence, letters)


def confident(guess: Guess) -> bool:
    return guess.letters >= MIN_LETTERS and guess.confidence >= MIN_CONFIDENCE


def declared(tag: str | None) -> str | None:
    """A declared language tag as its lower-case primary subtag ("en-US" -> "en"); None for
    what is not a language tag ("English", "")."""
    code = language_code(tag)  # en, en-US, EN_gb, fil: the one rule for a language code
    return primary_language(code) if code else None


def detect(text: str, *fallbacks: str | None) -> str | None:
    """The language of `text` as a lower-case ISO 639-1 code when the model is confident, else
    the first usable of `fallbacks` (the entry's declared language, then its feed's)."""
    guess = identify(text)
    if guess.language is not None and confident(guess):
        return guess.language
    return next((code for code in map(declared, fallbacks) if code), None)


def item_text(title: str, summary: str) -> str:
    return f"{title}\n{summary}"
