"""Lexical similarity between two items: groups near-duplicate rumours into stories.

Unsupervised on purpose: near-duplicates need no labelled data. Rumour-clarification pairs are
scored by the learned re-ranker (pair_model.py) behind the same `score_many` contract. Both
read the same cached vectors of each text (`vector_cache.text_vectors`), so a rumour's
candidates are vectorised once for the story and the re-ranker alike.
"""

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from classifiers.text import STOPWORDS, WORD, fold
from classifiers.text_facts import pair_text
from classifiers.tfidf import unit_rows
from classifiers.vector_cache import text_vectors
from tracker.domain import PairScore, TextForModel

VERSION = "pair-lexical-1"


class LexicalPairScorer:
    version = VERSION

    def score_many(
        self, query: TextForModel, candidates: Sequence[TextForModel], query_is_rumour: bool = True
    ) -> list[PairScore]:
        """Score each candidate against the query; 0 is unrelated, 1 identical. Symmetric, so
        which side the query is on does not matter."""
        if not candidates:
            return []
        vectors = text_vectors([pair_text(query), *(pair_text(c) for c in candidates)])
        chars = unit_rows(vectors.chars)
        char_cos = np.asarray((chars[1:] @ chars[0].T).todense()).ravel()
        query_facts, *facts = vectors.facts
        query_words = Counter(query_facts.words)
        scores = []
        for i, candidate in enumerate(facts):
            words = Counter(candidate.words)
            shared = query_words.keys() & words.keys()
            # Shared numbers ("F-16", "2023") are strong evidence two texts speak of one event.
            bonus = 0.1 if query_facts.numberish & candidate.numberish else 0.0
            word_cos = _cosine(query_words, words, shared)
            value = float(np.clip(0.55 * char_cos[i] + 0.45 * word_cos + bonus, 0.0, 1.0))
            scores.append(PairScore(score=round(value, 4), shared_terms=tuple(sorted(shared))))
        return scores


def _cosine(a: Counter[str], b: Counter[str], shared: set[str]) -> float:
    dot = sum(a[w] * b[w] for w in shared)
    if not dot:
        return 0.0
    return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))


def query_terms(item: TextForModel, limit: int = 24) -> list[str]:
    """Distinct content words for full-text candidate retrieval, longest (rarest-looking) first."""
    # Not accent-folded: the stored tsvector keeps diacritics (pgserver has no unaccent).
    found = {
        w
        for w in WORD.findall(_doc(item).lower())
        if fold(w) not in STOPWORDS and (len(w) > 2 or w.isdigit())
    }
    return sorted(found, key=lambda w: (-len(w), w))[:limit]


def _doc(item: TextForModel) -> str:
    return f"{item.title}. {item.summary}"
