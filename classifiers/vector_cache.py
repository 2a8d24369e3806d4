"""The vectors of pair texts (text_facts.pair_text): hashed character and word counts and the
text's facts, computed once per distinct text and kept in a bounded LRU cache.

A worker meets the same candidates again and again (every new item of a day searches the same
window); the counts depend on the text alone, not on a model, so they stay valid across models.
The pair re-ranker (pair_model.py) and the story scorer (pair_scorer.py) read the same cached
vectors, so a rumour's candidates are vectorised once for both.
"""

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache
from scipy import sparse

from classifiers.hashing import BUCKETS, char_counts, words_counts
from classifiers.text_facts import TextFacts, facts_of

# About 7 KB a text (measured with tracemalloc): 10,000 texts hold about 70 MB.
CAPACITY = 10_000


@dataclass(frozen=True)
class TextVectors:
    """Raw hashed counts (one row per text, before any model's IDF) and facts of texts."""

    chars: sparse.csr_matrix
    words: sparse.csr_matrix
    facts: list[TextFacts]


@dataclass(frozen=True)
class _Cached:
    chars: tuple[np.ndarray, np.ndarray]  # (bucket indices, counts) of the char n-grams
    words: tuple[np.ndarray, np.ndarray]  # the same of the word uni- and bigrams
    facts: TextFacts


# Least recently used dropped first. Not cachetools' `cached` decorator: the texts a call
# misses are vectorised together, in one batch, which a per-text decorator could not do. The
# lock keeps the cache whole when a threads-pool worker scores in several threads at once.
_cache: LRUCache[str, _Cached] = LRUCache(maxsize=CAPACITY)
_lock = threading.Lock()


@contextlib.contextmanager
def fresh_cache() -> Iterator[None]:
    """An empty text cache inside the block and the previous one after it: for timing a step
    on texts it has just seen without the cache flattering it."""
    global _cache
    with _lock:
        saved, _cache = _cache, LRUCache(maxsize=_cache.maxsize)
    try:
        yield
    finally:
        with _lock:
            _cache = saved


def vectorise(texts: Sequence[str]) -> TextVectors:
    """The vectors of `texts`, computed afresh, without the cache."""
    facts = [facts_of(t) for t in texts]
    chars = char_counts([f.folded for f in facts])
    words = words_counts(f.words for f in facts)
    return TextVectors(chars, words, facts)


def text_vectors(texts: Sequence[str]) -> TextVectors:
    """Vectors of pair texts (`pair_text`), computed once per distinct text and then cached.
    Large batches (training, evaluation) are vectorised whole and not cached."""
    if len(texts) > _cache.maxsize:
        return vectorise(texts)
    entries = _lookup(texts)
    missing = list(dict.fromkeys(t for t, e in zip(texts, entries, strict=True) if e is None))
    if missing:
        fresh = vectorise(missing)
        new = {
            text: _Cached(_row(fresh.chars, i), _row(fresh.words, i), fresh.facts[i])
            for i, text in enumerate(missing)
        }
        _store(new, texts)
        entries = [new[t] if e is None else e for t, e in zip(texts, entries, strict=True)]
    found = [e for e in entries if e is not None]
    return TextVectors(
        _stack([e.chars for e in found]), _stack([e.words for e in found]), [e.facts for e in found]
    )


def text_facts(texts: Sequence[str]) -> list[TextFacts]:
    """The facts part of `text_vectors`, without building the matrices."""
    entries = _lookup(texts)
    if any(e is None for e in entries):
        return text_vectors(texts).facts
    return [e.facts for e in entries if e is not None]


def _lookup(texts: Sequence[str]) -> list[_Cached | None]:
    """The cached entry of each text, or None; each one found becomes the most recent."""
    with _lock:
        return [_cache.get(t) for t in texts]


def _store(new: dict[str, _Cached], texts: Sequence[str]) -> None:
    """Add the entries of `new`, then mark each of `texts` used, in order."""
    with _lock:
        _cache.update(new)
        for text in texts:
            _cache.get(text)


def _row(matrix: sparse.csr_matrix, i: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = matrix.indptr[i], matrix.indptr[i + 1]
    return matrix.indices[start:end].copy(), matrix.data[start:end].copy()


def _stack(rows: list[tuple[np.ndarray, np.ndarray]]) -> sparse.csr_matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(i) for i, _ in rows])
    empty = np.zeros(0, dtype=np.float32)
    indices = np.concatenate([i for i, _ in rows]) if rows else empty.astype(np.int32)
    data = np.concatenate([d for _, d in rows]) if rows else empty
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), BUCKETS))
