"""What the pair models read of an item: its pair text (title and summary, links stripped)
and that text's facts (folded form, content words, numbers, entities, cross-language
concepts, cue counts), which pair features and shared terms compare."""

import math
import re
from dataclasses import dataclass

from classifiers.text import (
    STEM_CONCEPT,
    WORD,
    cue_counts,
    fold,
    strip_links,
    worth_matching,
)
from tracker.domain import TextForModel

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
NUMBERISH = re.compile(r"\w*\d\w*")
DIGIT = re.compile(r"\d")
CAPITALISED = re.compile(r"\b[A-Z][\w'-]+|\b[A-Z]{2,}\b")
CYRILLIC_LETTER = re.compile(r"[\u0400-\u04ff]")
LATIN_LETTER = re.compile(r"[A-Za-z]")


def pair_text(item: TextForModel) -> str:
    text = f"{item.title}. {item.summary}"
    # strip_links scans every position of the text; most texts have nothing it would strip,
    # which plain substring tests tell at a fraction of the cost.
    lowered = text.lower()
    if any(mark in lowered for mark in _LINK_MARKS):
        return strip_links(text)
    return text


# Every match of text.LINK contains one of these (in lower case).
_LINK_MARKS = ("://", "www.", "pic.twitter.com/", "@", "#")


@dataclass(frozen=True)
class TextFacts:
    folded: str
    words: tuple[str, ...]  # content words, in order
    numbers: frozenset[str]
    entities: frozenset[str]
    concepts: frozenset[str]
    cues: tuple[float, ...]
    # Words with a digit ("f-16s" gives "16s"): the story scorer's evidence of one event.
    numberish: frozenset[str]
    # Written mostly in Cyrillic letters: against a text in Latin ones, no word can match.
    cyrillic: bool


def facts_of(text: str) -> TextFacts:
    """The facts of one pair text, computed afresh (vector_cache.text_facts caches them). The
    text is folded and split into words once, for all of them."""
    folded = fold(text)
    tokens = WORD.findall(folded)
    return TextFacts(
        folded=folded,
        words=tuple(worth_matching(tokens)),
        numbers=frozenset(NUMBER.findall(text)),
        entities=frozenset(fold(e) for e in CAPITALISED.findall(text)),
        concepts=folded_concepts(folded),
        cues=tuple(math.log1p(count) for count in cue_counts(folded).values()),
        # NUMBERISH.findall retries inside every word without a digit: the words of a
        # text that hold one, found from the words, are the same and cheaper.
        numberish=frozenset(w for w in tokens if DIGIT.search(w)),
        cyrillic=len(CYRILLIC_LETTER.findall(text)) > len(LATIN_LETTER.findall(text)),
    )


def _stems_by_prefix() -> dict[str, tuple[tuple[str, str], ...]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for stem, concept in STEM_CONCEPT:
        if WORD.fullmatch(stem):
            found.setdefault(stem[:3], []).append((stem, concept))
    return {prefix: tuple(stems) for prefix, stems in found.items()}


# text.concepts tests every stem against the text; a one-word stem can only match at the
# start of a word, so each word looks up the few stems that begin as it does. Stems with a
# space are tested as text.concepts does.
_WORD_STEMS = _stems_by_prefix()
_PHRASE_STEMS = tuple((s, c) for s, c in STEM_CONCEPT if not WORD.fullmatch(s))


def folded_concepts(folded: str) -> frozenset[str]:
    """text.concepts of a text, from its folded form, in a tenth of the time."""
    words = WORD.findall(folded)
    found = {
        concept
        for word in set(words)
        for stem, concept in _WORD_STEMS.get(word[:3], ())
        if word.startswith(stem)
    }
    padded = f" {' '.join(words)} "
    found.update(concept for stem, concept in _PHRASE_STEMS if f" {stem}" in padded)
    return frozenset(found)
