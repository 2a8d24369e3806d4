"""What the item classifier sees in a text, computed in one pass over its tokens.

Each distinct token is looked at once and remembered (`_record`): its word, its topic-free
shape ('Wilson' -> 'w', 'fled' -> 'w_ed', 'says' stays), its edge character n-grams, and the
cue, style family or mark it is. Per batch, numpy then builds the hashed word, shape and
character features and the style counts for all items at once, so no Python loop runs per
n-gram. How an item is written (questions, attribution, hedging, first person) carries over
to events the model never saw, where the topic words it learned do not.

Links, @handles and casing never reach the features: a shouted text or one with a URL
appended is the same text.
"""

import re
import zlib
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from classifiers.text import CUES, STOPWORDS, fold

# Links and handles match as a whole and leave an empty group, so they drop out in one scan.
TOKEN = re.compile(r"(?:https?://|www\.|pic\.twitter\.com/)\S+|@\w+|(\w+|[?!\":])")
APOSTROPHES = str.maketrans("", "", "'\u2019")

# Closed-class words and cue words kept as they are in the shape view; every other word
# becomes its shape.
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

# Word families counted per item; a trailing * matches any ending.
FAMILIES: dict[str, tuple[str, ...]] = {
    "first_person": ("i", "me", "my", "mine", "we", "us", "our", "im", "ive"),
    "second_person": ("you", "your", "u"),
    "hedge": (
        "may", "might", "could", "possibl*", "perhaps", "apparently", "reportedly", "allegedly",
        "alleged", "unconfirmed", "unverified", "rumor*", "rumour*", "claim*", "believed",
        "suspected", "seem", "seems", "appear", "appears", "likely",
    ),
    "attribution": (
        "say", "says", "said", "according", "report", "reports", "reported", "reporting",
        "source", "sources", "tell", "tells", "told", "confirm*", "cite", "cites", "citing", "via",
    ),
    "breaking": ("breaking", "update", "urgent", "developing"),
    "negation": (
        "not", "no", "never", "isnt", "wasnt", "didnt", "denies", "denied", "false", "fake", "hoax",
    ),
    "opinion": (
        "lol", "wtf", "omg", "smh", "haha*", "pray*", "rip", "love", "hate", "stupid", "sad",
        "think", "feel", "hope", "wish", "should", "must", "need",
    ),
}  # fmt: skip
MARKS = ("?", "!", '"', ":")
CUE_FAMILIES = tuple(CUES)
DENSE = (
    *(f"cue_{c}" for c in CUE_FAMILIES),
    *FAMILIES,
    *(f"mark_{m}" for m in MARKS),
    "digits",
    "length",
)
_FAMILY_COLUMN = len(CUE_FAMILIES)
_MARK_COLUMN = _FAMILY_COLUMN + len(FAMILIES)
_DIGIT_COLUMN = _MARK_COLUMN + len(MARKS)
LENGTH_CAP = 60  # tokens: a headline with a summary sentence or two


def _split_cues() -> tuple[dict[str, int], dict[str, list[tuple[tuple[str, ...], int]]]]:
    """Cue phrases as token sequences: one-word cues match a token's start (a stem such as
    'dezmint' covers 'dezminte'); longer ones match whole tokens, the last by its start."""
    single: dict[str, int] = {}
    multi: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for family, cues in enumerate(CUES.values()):
        for cue in cues:
            words = tuple(w for w in TOKEN.findall(fold(cue)) if w)
            if len(words) == 1:
                single[words[0]] = family
            elif (words[1:], family) not in multi.get(words[0], []):
                multi.setdefault(words[0], []).append((words[1:], family))
    return single, multi


SINGLE_CUES, MULTI_CUES = _split_cues()

# One row per distinct token: hashes of word, shape, prefix and suffix (-1: none), then the
# cue family, style family and mark it is (-1: none), whether it is a number, and whether
# it may start a multi-word cue.
WORD, SHAPE, PREFIX, SUFFIX, CUE, FAMILY, MARK, DIGIT, MULTI = range(9)
FIELDS = MULTI + 1
CACHE_LIMIT = 2**18  # distinct tokens remembered: bounds memory on an open vocabulary


def _hash(text: str, namespace: int) -> int:
    # CRC-32 seeded per namespace: stable across processes (artifacts), and a C call.
    return zlib.crc32(text.encode(), namespace)


def shape(word: str) -> str:
    """'police' -> 'police', 'Wilson' -> 'w', 'fled' -> 'w_ed', '2014' -> '0'."""
    if not word[0].isalnum() and word[0] != "_":
        return word  # punctuation: ? ! : " carry style
    if word in KEEP or word.startswith("__"):  # the __kind_ / __lang_ markers stay
        return word
    if word.isdigit():
        return "0"
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return f"w_{suffix}"
    return "w"


Stems = tuple[dict[str, int], tuple[int, ...], frozenset[str]]


def _by_prefix(entries: dict[str, int]) -> Stems:
    """Stems with their lengths, and their first two letters: most words share those with
    no stem, and are done after one set lookup."""
    return entries, tuple(sorted({len(e) for e in entries})), frozenset(e[:2] for e in entries)


# Style families: whole words, and stems (written with a trailing *) that match a word's start.
_FAMILY_WORDS = {w: i for i, ws in enumerate(FAMILIES.values()) for w in ws if w[-1] != "*"}
_FAMILY_STEMS = _by_prefix(
    {w[:-1]: i for i, ws in enumerate(FAMILIES.values()) for w in ws if w[-1] == "*"}
)
_CUE_STEMS = _by_prefix(SINGLE_CUES)


def _lookup(word: str, stems: Stems) -> int:
    table, lengths, starts = stems
    if word[:2] not in starts:
        return -1
    return next((table[word[:n]] for n in lengths if word[:n] in table), -1)


_SHAPES = {s: _hash(s, 2) for s in ("w", "w_ing", "w_ed", "w_ly", "w_s", "0", *MARKS)}


def _record(token: str) -> tuple[int, ...]:
    word = fold(token)
    long_word = len(word) > 4 and word.isalpha()
    record = (
        _hash(word, 1),
        _SHAPES.get(shape(word)) or _hash(shape(word), 2),
        _hash(word[:4], 3) if long_word else -1,
        _hash(word[-3:], 4) if long_word else -1,
        _lookup(word, _CUE_STEMS),
        _FAMILY_WORDS.get(word, _lookup(word, _FAMILY_STEMS)),
        MARKS.index(word) if word in MARKS else -1,
        int(word.isdigit()),
        int(word in MULTI_CUES),
    )
    return record


class _TokenTable:
    """Every distinct token seen, with its record in one row of a numpy table, so a batch's
    records are one fancy-indexing step. Cleared when full, between batches."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.index: dict[str, int] = {}
        self.table = np.zeros((4096, FIELDS), dtype=np.int64)

    def records(self, flat: list[str]) -> np.ndarray:
        if len(self.index) + len(flat) > CACHE_LIMIT:
            self.clear()
        get = self.index.get
        rows = np.array([get(t, -1) for t in flat], dtype=np.int64)
        missing = np.flatnonzero(rows < 0).tolist()
        if missing:
            self._add(list(dict.fromkeys(flat[i] for i in missing)))
            rows[missing] = [self.index[flat[i]] for i in missing]
        return self.table[rows].reshape(-1, FIELDS)

    def _add(self, new: list[str]) -> None:
        start, end = len(self.index), len(self.index) + len(new)
        if end > len(self.table):
            grown = np.zeros((max(end, 2 * len(self.table)), FIELDS), dtype=np.int64)
            grown[:start] = self.table[:start]
            self.table = grown
        self.table[start:end] = [_record(t) for t in new]
        self.index.update(zip(new, range(start, end), strict=True))


_TOKENS = _TokenTable()


def tokens(document: str) -> list[str]:
    """Lower-case words and marks, without links and handles."""
    lowered = document.lower()
    if "'" in lowered or "\u2019" in lowered:  # "don't" reads as "dont"
        lowered = lowered.translate(APOSTROPHES)
    return [t for t in TOKEN.findall(lowered) if t]


def _ngrams(ids: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the n-grams of consecutive ids within one row."""
    if len(ids) < n:
        return rows[:0], ids[:0]
    same = np.ones(len(ids) - n + 1, dtype=bool)
    combined = ids[: len(ids) - n + 1].copy()
    for k in range(1, n):
        same &= rows[k : len(rows) - n + 1 + k] == rows[: len(rows) - n + 1]
        combined = (combined * 1_000_003 + ids[k : len(ids) - n + 1 + k]) % 2**32
    return rows[: len(rows) - n + 1][same], combined[same]


def _multi_word_cues(flat: list[str], rows: np.ndarray, table: np.ndarray) -> list[int]:
    """Cue family of each multi-word cue found, one entry per match."""
    found = []
    for start in np.flatnonzero(table[:, MULTI]).tolist():
        for rest, family in MULTI_CUES[fold(flat[start])]:
            end = start + 1 + len(rest)
            if end > len(flat) or rows[end - 1] != rows[start]:
                continue
            following = [fold(t) for t in flat[start + 1 : end]]
            if following[:-1] == list(rest[:-1]) and following[-1].startswith(rest[-1]):
                found.append(start)
                found.append(family)
    return found


class ItemFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Hashed word n-grams, word-edge character n-grams and topic-free shape n-grams, each
    block sublinear TF-IDF, L2-normalised and weighted; then cue, style-family, mark, digit
    and length counts. Memory is bounded by the hash widths whatever the vocabulary."""

    def __init__(
        self,
        bits: tuple[int, int, int] = (17, 15, 13),
        weights: tuple[float, float, float] = (0.5, 0.3, 1.0),
        shape_n: int = 3,
    ):
        self.bits = bits
        self.weights = weights
        self.shape_n = shape_n

    def fit(self, documents: Sequence[str], y: Any = None) -> "ItemFeatures":
        self.offsets_ = np.cumsum([0, *(2**b for b in self.bits), len(DENSE)])
        counts = self._counts(documents)
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        self.idf_ = np.log((1 + len(documents)) / (1 + df)) + 1
        self.idf_[self.offsets_[-2] :] = 1.0  # the dense counts are scaled by themselves
        return self

    def transform(self, documents: Sequence[str]) -> sparse.csr_matrix:
        matrix = self._counts(documents)
        block = np.searchsorted(self.offsets_, matrix.indices, side="right") - 1
        hashed = block < len(self.bits)
        data = matrix.data
        data[hashed] = np.log1p(data[hashed]) * self.idf_[matrix.indices[hashed]]
        # One L2 norm per row and hashed block, gathered in one bincount.
        row = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        cell = row * len(self.offsets_) + block
        cells = matrix.shape[0] * len(self.offsets_)
        norms = np.sqrt(np.bincount(cell[hashed], data[hashed] ** 2, cells))
        scale = np.asarray(self.weights)[block[hashed]] / norms[cell[hashed]]
        data[hashed] *= scale
        dense = matrix.indices[~hashed] - self.offsets_[-2]
        values = data[~hashed]
        values[dense < _MARK_COLUMN] = np.log1p(values[dense < _MARK_COLUMN])
        marks = (dense >= _MARK_COLUMN) & (dense < len(DENSE) - 1)
        values[marks] = np.minimum(values[marks], 1)
        data[~hashed] = values
        return matrix

    def _counts(self, documents: Sequence[str]) -> sparse.csr_matrix:
        """Occurrences per item of every hashed n-gram and dense feature, in one matrix."""
        per_document = [tokens(d) for d in documents]
        lengths = np.fromiter(map(len, per_document), dtype=np.int64, count=len(per_document))
        flat = list(chain.from_iterable(per_document))
        table = _TOKENS.records(flat)
        rows = np.repeat(np.arange(len(documents)), lengths)
        words = [(rows, table[:, WORD]), _ngrams(table[:, WORD], rows, 2)]
        edges = [(rows[table[:, c] >= 0], table[table[:, c] >= 0, c]) for c in (PREFIX, SUFFIX)]
        shapes = [_ngrams(table[:, SHAPE], rows, k) for k in range(1, self.shape_n + 1)]
        parts_rows, parts_columns = [], []
        for offset, width, parts in zip(
            self.offsets_, (2**b for b in self.bits), (words, edges, shapes), strict=False
        ):
            parts_rows += [r for r, _ in parts]
            parts_columns += [offset + h % width for _, h in parts]
        dense_rows, dense_columns, dense_values = _dense(flat, rows, table, lengths)
        all_rows = np.concatenate([*parts_rows, dense_rows])
        columns = np.concatenate([*parts_columns, self.offsets_[-2] + dense_columns])
        values = np.concatenate([np.ones(len(all_rows) - len(dense_rows)), dense_values])
        shape = (len(documents), int(self.offsets_[-1]))
        return sparse.csr_matrix((values, (all_rows, columns)), shape=shape)


def _dense(
    flat: list[str], rows: np.ndarray, table: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the cue, family, mark, digit and length counts."""
    found = [
        (rows[table[:, CUE] >= 0], table[table[:, CUE] >= 0, CUE]),
        (rows[table[:, FAMILY] >= 0], table[table[:, FAMILY] >= 0, FAMILY] + _FAMILY_COLUMN),
        (rows[table[:, MARK] >= 0], table[table[:, MARK] >= 0, MARK] + _MARK_COLUMN),
        (rows[table[:, DIGIT] > 0], np.full(int((table[:, DIGIT] > 0).sum()), _DIGIT_COLUMN)),
    ]
    multi = np.array(_multi_word_cues(flat, rows, table), dtype=np.int64).reshape(-1, 2)
    found.append((rows[multi[:, 0]], multi[:, 1]))
    documents = np.arange(len(lengths))
    found.append((documents, np.full(len(lengths), len(DENSE) - 1)))
    dense_rows = np.concatenate([r for r, _ in found])
    columns = np.concatenate([c for _, c in found])
    values = np.ones(len(dense_rows))
    values[len(values) - len(lengths) :] = np.minimum(lengths, LENGTH_CAP) / LENGTH_CAP
    return dense_rows, columns, values
