"""Hashed n-gram counts of texts: character 3-5-grams and content words with their bigrams,
each hashed into BUCKETS columns of a sparse matrix, one row per text. The counts depend on
the text alone, never on a model, so they can be computed once and cached (vector_cache.py)."""

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import FeatureHasher

from classifiers.text import content_words, fold

BUCKET_BITS = 18
BUCKETS = 2**BUCKET_BITS
# Which hash turns character n-grams into buckets; a fitted model records the one it saw.
CHAR_HASHING = "poly64-1"
_PRIME = np.uint64(0x100000001B3)


def char_counts(folded: Sequence[str]) -> sparse.csr_matrix:
    """Counts of the `char_wb` 3-5-grams of accent-folded texts (each word padded with a
    space, n-grams inside words; a word shorter than n counts once, whole), hashed into
    BUCKETS columns. All texts at once in numpy: a polynomial hash of each n-gram's code
    points, mixed, instead of a Python string and a MurmurHash per n-gram, which took most of
    the time of scoring a candidate."""
    padded = [f" {'  '.join(words)} " if (words := t.split()) else "" for t in folded]
    sizes = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
    points = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32)
    points = points.astype(np.uint64)
    owner = np.repeat(np.arange(len(folded), dtype=np.uint64), sizes)
    space = points == ord(" ")
    # closing[k]: how many words end (their closing space) before position k. An n-gram
    # stays inside one padded word when no word closes before its last character.
    closing = np.zeros(points.size + 1, dtype=np.int64)
    closing[2:] = np.cumsum(space[1:] & ~space[:-1])
    keys = []
    for n in (3, 4, 5):
        starts = np.arange(max(points.size - n + 1, 0))
        starts = starts[closing[starts + n - 1] == closing[starts]]
        hashed = np.full(starts.size, n, dtype=np.uint64)
        for k in range(n):
            hashed = hashed * _PRIME + points[starts + k]
        bucket = _mix(hashed) >> np.uint64(64 - BUCKET_BITS)
        keys.append(owner[starts] << np.uint64(BUCKET_BITS) | bucket)
    return _counts_matrix(np.concatenate(keys), len(folded))


def _counts_matrix(keys: np.ndarray, n_rows: int) -> sparse.csr_matrix:
    """A CSR matrix of counts from keys `row << BUCKET_BITS | column`, one per occurrence."""
    unique, counts = np.unique(keys, return_counts=True)
    rows = (unique >> np.uint64(BUCKET_BITS)).astype(np.int64)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(rows, minlength=n_rows))
    columns = (unique & np.uint64(BUCKETS - 1)).astype(np.int32)
    return sparse.csr_matrix((counts.astype(np.float32), columns, indptr), shape=(n_rows, BUCKETS))


def _mix(hashed: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches the top bits taken as the bucket."""
    hashed = (hashed ^ (hashed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    hashed = (hashed ^ (hashed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = hashed ^ (hashed >> np.uint64(31))
    return mixed


def legacy_char_counts(texts: Sequence[str]) -> sparse.csr_matrix:
    """The character counts that models fitted before CHAR_HASHING saw: scikit-learn's
    `char_wb` 3-5-grams of the folded texts through the FeatureHasher."""
    return sparse.csr_matrix(_HASHER.transform(_char_grams(t) for t in texts))


def _char_grams(text: str) -> list[str]:
    """scikit-learn's `char_wb` 3-5-grams of the folded text: how models fitted before
    CHAR_HASHING saw characters (see `legacy_char_counts`)."""
    grams: list[str] = []
    for word in fold(text).split():
        padded = f" {word} "
        size = len(padded)
        for n in (3, 4, 5):
            if size <= n:  # a short word counts once, whole
                grams.append(padded)
                break
            grams += [padded[i : i + n] for i in range(size - n + 1)]
    return grams


def word_counts(texts: Sequence[str]) -> sparse.csr_matrix:
    """Counts of content words and their bigrams, hashed into BUCKETS columns."""
    return words_counts(content_words(t) for t in texts)


def words_counts(words: Iterable[Sequence[str]]) -> sparse.csr_matrix:
    """`word_counts` of texts already split into their content words, one sequence a text."""
    return sparse.csr_matrix(_HASHER.transform(_grams_of_words(list(w)) for w in words))


def _grams_of_words(words: list[str]) -> list[str]:
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


_HASHER = FeatureHasher(BUCKETS, input_type="string", alternate_sign=False, dtype=np.float32)
