"""Fingerprints that link the same article carried by several feeds."""

import hashlib
import re

from classifiers.text import fold

NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def text_fingerprint(title: str, summary: str) -> str | None:
    """Hash of the accent-folded words of title and summary: reworded punctuation, case or
    spacing still match, other wording does not. None for texts too short to be telling."""
    # casefold around fold: lower() alone keeps "ß" apart from "SS" and "ᾀ" from "ἈΙ", the
    # capitals a headline in upper case has.
    words = NON_WORD.sub(" ", fold(f"{title} {summary}".casefold()).casefold()).split()
    if len(words) < 6:
        return None
    return hashlib.sha256(" ".join(words).encode()).hexdigest()
