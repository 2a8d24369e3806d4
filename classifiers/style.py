"""Topic-free views of a text for the item classifier: how an item is written (questions,
attribution, hedging, first person) carries over to events the model never saw, where the
topic words it learned do not. Both views ignore casing, links and handles, so they never
change when a text is shouted or a URL is appended."""

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from classifiers.text import STOPWORDS, fold

NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

# Closed-class words and cue words kept as they are; every other word becomes its shape.
_KEEP_TEXT = """
say says said saying according report reports reported reporting reportedly source sources
confirm confirms confirmed confirmation unconfirmed unverified claim claims claimed allegedly
alleged apparently possibly probably likely believed suspected rumour rumor rumours rumors
rumoured rumored breaking update urgent developing just now official officials police witness
witnesses tells told deny denies denied false fake hoax true real actually really lol omg wtf
smh rip pray love hate think feel hope wish need want know believe seems appears may might
could would should must im ive dont cant isnt wasnt didnt wont doesnt via
"""
KEEP = frozenset(ENGLISH_STOP_WORDS) | STOPWORDS | frozenset(_KEEP_TEXT.split())
SUFFIXES = ("ing", "ed", "ly", "s")


@lru_cache(maxsize=2**16)
def _view(token: str) -> str:
    if not token[0].isalnum() and token[0] != "_":
        return token  # punctuation: ? ! : " carry style
    word = fold(token)
    if word in KEEP or word.startswith("__"):  # the __kind_ / __lang_ markers stay
        return word
    if word.isdigit():
        return "0"
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return f"w_{suffix}"
    return "w"


def topic_free(text: str) -> str:
    """'Police say Wilson fled?' -> 'police say w w_ed ?': syntax and cues, not the topic."""
    return " ".join(map(_view, TOKEN.findall(NUMBER.sub(" 0 ", text))))


FAMILIES = {
    "first_person": r"i|me|my|mine|we|us|our|im|ive",
    "second_person": r"you|your|u",
    "hedge": r"may|might|could|possibl\w*|perhaps|apparently|reportedly|allegedly|alleged|"
    r"unconfirmed|unverified|rumou?r\w*|claim\w*|believed|suspected|seems?|appears?|likely",
    "attribution": r"says?|said|according|reports?|reported|reporting|sources?|tells?|told|"
    r"confirm\w*|cites?|citing|via",
    "breaking": r"breaking|just in|update|urgent|developing",
    "negation": r"not|no|never|isnt|wasnt|didnt|denies|denied|false|fake|hoax",
    "opinion": r"lol|wtf|omg|smh|haha\w*|pray\w*|rip|love|hate|stupid|sad|think|feel|hope|wish|"
    r"should|must|need",
}
_FAMILY = re.compile("|".join(rf"\b(?P<{name}>{words})\b" for name, words in FAMILIES.items()))
PUNCTUATION = ("?", "!", '"', ":")


class StyleFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Punctuation, digits, length and word-family counts, each roughly in [0, 1]."""

    def fit(self, documents: Sequence[str], y: Any = None) -> "StyleFeatures":
        return self

    def transform(self, documents: Sequence[str]) -> sparse.csr_matrix:
        width = len(PUNCTUATION) + 2 + len(FAMILIES)
        out = np.zeros((len(documents), width))
        columns = {name: i for i, name in enumerate(FAMILIES, start=len(PUNCTUATION) + 2)}
        for row, document in enumerate(documents):
            text = document.split(" __kind_")[0]  # the marker tokens are not style
            out[row, : len(PUNCTUATION)] = [mark in text for mark in PUNCTUATION]
            out[row, len(PUNCTUATION)] = any(ch.isdigit() for ch in text)
            out[row, len(PUNCTUATION) + 1] = min(len(text), 400) / 400
            for match in _FAMILY.finditer(fold(text).replace("'", "")):
                out[row, columns[str(match.lastgroup)]] += 1
        out[:, len(PUNCTUATION) + 2 :] = np.log1p(out[:, len(PUNCTUATION) + 2 :])
        return sparse.csr_matrix(out)
