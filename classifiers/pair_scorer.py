"""Lexical similarity between two items: groups near-duplicate rumours into stories.

Unsupervised on purpose: near-duplicates need no labelled data. Rumour-clarification pairs are
scored by the learned re-ranker (pair_model.py) behind the same `score_many` contract.
"""

import re
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from classifiers.text import STOPWORDS, WORD, content_words, fold
from tracker.domain import PairScore, TextForModel

VERSION = "pair-lexical-1"
NUMBERISH = re.compile(r"\w*\d\w*")


class LexicalPairScorer:
    version = VERSION

    def __init__(self) -> None:
        self._chars = HashingVectorizer(
            preprocessor=fold,
            analyzer="char_wb",
            ngram_range=(3, 5),
            n_features=2**20,
            alternate_sign=False,
        )
        self._words = HashingVectorizer(
            analyzer=content_words, n_features=2**20, alternate_sign=False
        )

    def score_many(
        self, query: TextForModel, candidates: Sequence[TextForModel], query_is_rumour: bool = True
    ) -> list[PairScore]:
        """Score each candidate against the query; 0 is unrelated, 1 identical. Symmetric, so
        which side the query is on does not matter."""
        if not candidates:
            return []
        docs = [_doc(query)] + [_doc(c) for c in candidates]
        char_cos = (self._chars.transform(docs[:1]) @ self._chars.transform(docs[1:]).T).toarray()[
            0
        ]
        word_cos = (self._words.transform(docs[:1]) @ self._words.transform(docs[1:]).T).toarray()[
            0
        ]
        query_words = set(content_words(docs[0]))
        query_numbers = set(NUMBERISH.findall(fold(docs[0])))
        scores = []
        for i, candidate in enumerate(docs[1:]):
            shared = query_words & set(content_words(candidate))
            numbers = query_numbers & set(NUMBERISH.findall(fold(candidate)))
            # Shared numbers ("F-16", "2023") are strong evidence two texts speak of one event.
            bonus = 0.1 if numbers else 0.0
            value = float(np.clip(0.55 * char_cos[i] + 0.45 * word_cos[i] + bonus, 0.0, 1.0))
            scores.append(PairScore(score=round(value, 4), shared_terms=tuple(sorted(shared))))
        return scores


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
