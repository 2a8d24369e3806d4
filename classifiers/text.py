"""Text normalisation, tokens and cue lexicons shared by both models."""

import re
import unicodedata

WORD = re.compile(r"\w+", re.UNICODE)

_STOPWORDS_TEXT = """
a an the and or but of to in on at by for with from as is are was were be been being it its this
that these those has have had will would can could may might should not no than then there their
they them he she his her we our you your i into over under about after before also more most said
says say new just up out all any some which who whom what when where how si și sa să la de pe cu
din în in ca că ce care un o unei unui una este sunt fost fi nu mai ar au al ale lui lor le se sau
iar dar dupa după pentru despre prin acest aceasta această acum fara fără intre între
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

# Cue phrases by family; matched on accent-folded lower-case text. English, Romanian, Ukrainian,
# Russian. They give the model a language-independent signal the n-grams alone learn slowly.
# fmt: off
CUES: dict[str, tuple[str, ...]] = {
    # Prefixes where one stem covers a family ("fals" matches false/falsă, "dezmint" dezminte);
    # no cue contains another, so no word counts twice.
    "denial": (
        "fals", "fake", "denies", "denied", "deny", "dismiss", "debunk", "misleading", "not true",
        "no evidence", "clarif", "fact check", "fact-check", "untrue", "hoax", "refute",
        "rejects", "dezmint", "nu este adevarat", "preciz", "neadevar", "infirma", "спростов",
        "неправд", "фейк", "опроверг", "ложн", "не соответствует",
    ),
    "attribution": (
        "sources say", "according to sources", "insiders", "reportedly", "allegedly",
        "unconfirmed", "leaked", "circula", "rumour", "rumor", "claims", "surse", "neconfirmat",
        "se pare", "ar fi", "ar urma", "джерела", "источник", "кажуть", "говорят", "якобы",
        "нібито",
    ),
    "hedging": (
        "could", "may have", "might", "possibly", "secret", "hidden", "cover-up", "cover up",
        "ascund", "posibil", "ar putea", "таємн", "тайн", "возможно",
    ),
    "official": (
        "ministry", "minister", "press release", "statement", "spokesperson", "spokesman",
        "authorities", "government", "comunicat", "purtator de cuvant", "guvernul",
        "autoritatile", "mapn", "міністерство", "министерство", "заява", "заявление",
    ),
}
# fmt: on


def fold(text: str) -> str:
    """Lower-case and strip accents so ș/ş/s and ț/ţ/t match alike."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def content_words(text: str) -> list[str]:
    """Accent-folded words worth matching on: no stop words, no single letters."""
    return [
        w for w in WORD.findall(fold(text)) if w not in STOPWORDS and (len(w) > 2 or w.isdigit())
    ]


def cue_counts(text: str) -> dict[str, int]:
    folded = fold(text)
    return {family: sum(folded.count(cue) for cue in cues) for family, cues in CUES.items()}
