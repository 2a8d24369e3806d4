"""An in-process index over a fixed collection: the candidate retrieval for evaluation, where
the collection is a file rather than the items table (the workers search PostgreSQL: full-text
search and the vector column)."""

from collections.abc import Sequence

import numpy as np

from classifiers import embedder
from classifiers.hashing import char_counts, word_counts
from classifiers.text import fold
from classifiers.text_facts import pair_text
from classifiers.tfidf import idf_weights, tfidf
from tracker.domain import TextForModel


class SparseIndex:
    """Character 3-5-gram TF-IDF cosine, word BM25 and sentence-vector cosine, each with its
    own top-k: the last reaches documents in another language."""

    def __init__(self, ids: Sequence[str], texts: Sequence[TextForModel]):
        documents = [pair_text(t) for t in texts]
        self.ids = list(ids)
        chars = char_counts([fold(d) for d in documents])
        self._char_idf = idf_weights(chars)
        self._char_matrix = tfidf(chars, self._char_idf).T.tocsr()
        words = word_counts(documents)
        word_idf = idf_weights(words)
        lengths = np.asarray(words.sum(axis=1)).ravel()
        k1, b = 1.2, 0.75
        norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()), 1.0))
        coo = words.tocoo()
        coo.data = word_idf[coo.col] * coo.data * (k1 + 1) / (coo.data + norm[coo.row])
        self._bm25_matrix = coo.T.tocsr()
        self._meaning = embedder.vectors(texts)

    def search(self, queries: Sequence[TextForModel], k: int, meaning_k: int) -> list[list[int]]:
        """Positions in the collection of each query's candidates: the union of the top k by
        character cosine, the top k/2 by BM25 and the top `meaning_k` by vector cosine."""
        documents = [pair_text(q) for q in queries]
        chars = tfidf(char_counts([fold(d) for d in documents]), self._char_idf)
        chars = chars @ self._char_matrix
        words = (word_counts(documents) > 0).astype(np.float32) @ self._bm25_matrix
        meaning = embedder.vectors(queries) @ self._meaning.T
        found = []
        for row in range(len(documents)):
            best = set(_top(chars[row].toarray().ravel(), k))
            best |= set(_top(words[row].toarray().ravel(), k // 2))
            best |= set(_top(meaning[row], meaning_k))
            found.append(sorted(best))
        return found


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.size)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[scores[top] > 0]
