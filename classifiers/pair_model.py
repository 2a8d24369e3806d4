"""The learned pair re-ranker: how likely a clarification answers a rumour, one sklearn Pipeline.

Rows are (rumour, clarification) pairs grouped by the item being paired (the query): the
features compare the two texts (character and word TF-IDF cosine, BM25, shared numbers,
entities and cross-language concepts), their time gap and sources, and how each lexical score
stands against the other candidates of the same query, which matters more than its raw value.
"""

import hashlib
import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from classifiers.evaluate import in_validation, ranked, retrieval_metrics
from classifiers.text import CUES, WORD, concepts, content_words, cue_counts, fold, strip_links
from tracker.domain import FEED_KINDS, PairScore, TextForModel

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
CAPITALISED = re.compile(r"\b[A-Z][\w'-]+|\b[A-Z]{2,}\b")
# Clarification minus rumour, in days: a debunk usually follows within days, rarely before.
GAP_EDGES = (-30, -3, 0, 3, 14, 60)
BUCKETS = 2**18


@dataclass(frozen=True)
class PairExample:
    """One candidate pair; `group` ties together the candidates of one query item."""

    rumour: TextForModel
    clarification: TextForModel
    group: int
    query_is_rumour: bool = True


def pair_text(item: TextForModel) -> str:
    return strip_links(f"{item.title}. {item.summary}")


def _word_grams(text: str) -> list[str]:
    words = content_words(text)
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _hashing(analyzer: str) -> HashingVectorizer:
    if analyzer == "char":
        return HashingVectorizer(
            preprocessor=fold,
            analyzer="char_wb",
            ngram_range=(3, 5),
            n_features=BUCKETS,
            alternate_sign=False,
            norm=None,
        )
    return HashingVectorizer(
        analyzer=_word_grams, n_features=BUCKETS, alternate_sign=False, norm=None
    )


def _idf(counts: sparse.csr_matrix) -> np.ndarray:
    documents = counts.shape[0]
    frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    idf: np.ndarray = np.log((1 + documents) / (1 + frequency)).astype(np.float32) + 1
    return idf


def _tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    weighted = counts.astype(np.float32)
    weighted.data = np.log1p(weighted.data) * idf[weighted.indices]
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    return sparse.csr_matrix(sparse.diags(1 / norms) @ weighted)


def feature_names() -> list[str]:
    lexical = ["char_cos", "word_cos", "bm25", "concepts"]
    in_group = [f"{name}_{view}" for name in lexical for view in ("z", "below_best", "rank")]
    return [
        *lexical,
        *in_group,
        "shared_numbers",
        "shared_entities",
        "author_named",
        "has_gap",
        *[f"gap_bucket_{i}" for i in range(len(GAP_EDGES) + 1)],
        *[f"clarification_kind_{k}" for k in FEED_KINDS],
        "rumour_kind_social",
        *[f"clarification_cue_{family}" for family in CUES],
        "same_language",
    ]


class PairFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Turns PairExamples into feature rows; fit learns IDF and average length from the
    distinct texts it is given, so scores do not depend on the order of candidates."""

    def fit(self, pairs: Sequence[PairExample], y: Any = None) -> "PairFeatures":
        texts = list({pair_text(t): None for p in pairs for t in (p.rumour, p.clarification)})
        self.char_idf_ = _idf(_hashing("char").transform(texts))
        words = _hashing("word").transform(texts)
        self.word_idf_ = _idf(words)
        self.average_length_ = float(words.sum() / max(len(texts), 1)) or 1.0
        return self

    def transform(self, pairs: Sequence[PairExample]) -> np.ndarray:
        if not pairs:
            return np.zeros((0, len(feature_names())))
        rumours = [pair_text(p.rumour) for p in pairs]
        clarifications = [pair_text(p.clarification) for p in pairs]
        # Each distinct text is vectorised once: a query repeats across all its candidates.
        texts = list(dict.fromkeys([*rumours, *clarifications]))
        position = {text: i for i, text in enumerate(texts)}
        r = np.asarray([position[t] for t in rumours])
        c = np.asarray([position[t] for t in clarifications])
        queries = np.where([p.query_is_rumour for p in pairs], r, c)
        documents = np.where([p.query_is_rumour for p in pairs], c, r)
        chars = _tfidf(_hashing("char").transform(texts), self.char_idf_)
        counts = _hashing("word").transform(texts)
        words = _tfidf(counts, self.word_idf_)
        facts = [_text_facts(text) for text in texts]
        pair_facts = np.asarray(
            [_pair_facts(p, facts[i], facts[j]) for p, i, j in zip(pairs, r, c, strict=True)]
        )
        lexical = np.column_stack(
            [
                _rowwise(chars, r, chars, c),
                _rowwise(words, r, words, c),
                _rowwise((counts > 0).astype(np.float32), queries, self._bm25(counts), documents),
                pair_facts[:, 0],
            ]
        )
        groups = np.asarray([p.group for p in pairs])
        return np.hstack([lexical, _in_group(lexical, groups), pair_facts[:, 1:]])

    def _bm25(
        self, counts: sparse.csr_matrix, k1: float = 1.2, b: float = 0.75
    ) -> sparse.csr_matrix:
        """Each text as a BM25 document: a query's score is the sum over its distinct words."""
        coo = counts.tocoo()
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        norm = k1 * (1 - b + b * lengths / self.average_length_)
        tf = coo.data.astype(np.float32)
        weights = self.word_idf_[coo.col] * tf * (k1 + 1) / (tf + norm[coo.row])
        return sparse.csr_matrix((weights, (coo.row, coo.col)), shape=counts.shape)


def _rowwise(
    a: sparse.csr_matrix, a_rows: np.ndarray, b: sparse.csr_matrix, b_rows: np.ndarray
) -> np.ndarray:
    return np.asarray(a[a_rows].multiply(b[b_rows]).sum(axis=1)).ravel()


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _in_group(lexical: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each lexical score against its group: z-score, distance below the best, and log rank."""
    out = np.zeros((lexical.shape[0], lexical.shape[1] * 3))
    order = np.argsort(groups, kind="stable")
    _, starts = np.unique(groups[order], return_index=True)
    for rows in np.split(order, starts[1:]):
        values = lexical[rows]
        z = (values - values.mean(axis=0)) / (values.std(axis=0) + 1e-9)
        below = values - values.max(axis=0)
        ranks = np.log1p((-values).argsort(axis=0).argsort(axis=0))
        out[rows] = np.column_stack(
            [np.column_stack(v) for v in zip(z.T, below.T, ranks.T, strict=True)]
        )
    return out


@dataclass(frozen=True)
class _TextFacts:
    folded: str
    numbers: frozenset[str]
    entities: frozenset[str]
    concepts: frozenset[str]
    cues: tuple[float, ...]


def _text_facts(text: str) -> _TextFacts:
    return _TextFacts(
        folded=fold(text),
        numbers=frozenset(NUMBER.findall(text)),
        entities=frozenset(fold(e) for e in CAPITALISED.findall(text)),
        concepts=concepts(text),
        cues=tuple(math.log1p(count) for count in cue_counts(text).values()),
    )


def _pair_facts(pair: PairExample, rumour: _TextFacts, clarification: _TextFacts) -> list[float]:
    rumour_item, clarification_item = pair.rumour, pair.clarification
    shared_entities = rumour.entities & clarification.entities
    author = {w for w in WORD.findall(fold(rumour_item.author or "")) if len(w) > 2}
    gap = _gap_days(rumour_item, clarification_item)
    buckets = [0.0] * (len(GAP_EDGES) + 1)
    if gap is not None:
        buckets[sum(gap >= edge for edge in GAP_EDGES)] = 1.0
    languages = (rumour_item.language or "")[:2], (clarification_item.language or "")[:2]
    return [
        _jaccard(rumour.concepts, clarification.concepts),
        math.log1p(len(rumour.numbers & clarification.numbers)),
        len(shared_entities) / (1 + len(rumour.entities)),
        float(any(word in clarification.folded for word in author)),
        float(gap is not None),
        *buckets,
        *[float(clarification_item.feed_kind == kind) for kind in FEED_KINDS],
        float(rumour_item.feed_kind == "social"),
        *clarification.cues,
        float(languages[0] == languages[1] or not all(languages)),
    ]


def _gap_days(rumour: TextForModel, clarification: TextForModel) -> float | None:
    if rumour.seen_at is None or clarification.seen_at is None:
        return None
    return (clarification.seen_at - rumour.seen_at).total_seconds() / 86400


def build_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("features", PairFeatures()),
            ("scale", StandardScaler()),
            ("classifier", LogisticRegression(C=1.0, max_iter=3000)),
        ]
    )


class PairRanker:
    """A trained pair pipeline behind the scorer contract the pairing stage uses."""

    def __init__(self, pipeline: Pipeline, version: str, metadata: dict[str, Any]):
        self.pipeline = pipeline
        self.version = version
        self.metadata = metadata

    def score_pairs(self, pairs: Sequence[PairExample]) -> np.ndarray:
        if not pairs:
            return np.zeros(0)
        return np.asarray(self.pipeline.predict_proba(list(pairs))[:, 1])

    def score_many(
        self, query: TextForModel, candidates: Sequence[TextForModel], query_is_rumour: bool
    ) -> list[PairScore]:
        pairs = [
            PairExample(query, c, 0) if query_is_rumour else PairExample(c, query, 0, False)
            for c in candidates
        ]
        return [
            PairScore(score=round(float(s), 4), shared_terms=explain(p.rumour, p.clarification))
            for p, s in zip(pairs, self.score_pairs(pairs), strict=True)
        ]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self.pipeline, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, artifact: bytes, version: str, metadata: dict[str, Any]) -> "PairRanker":
        # joblib unpickles code: only our own artifacts, read from our own database, come here.
        return cls(joblib.load(io.BytesIO(artifact)), version, metadata)


def explain(rumour: TextForModel, clarification: TextForModel) -> tuple[str, ...]:
    """What the two texts share: words, numbers and cross-language concepts."""
    a, b = pair_text(rumour), pair_text(clarification)
    words = set(content_words(a)) & set(content_words(b))
    words |= set(NUMBER.findall(a)) & set(NUMBER.findall(b))
    shared_concepts = {f"~{c}" for c in concepts(a) & concepts(b)}
    return tuple(sorted(words)) + tuple(sorted(shared_concepts))


def _query(pair: PairExample) -> TextForModel:
    return pair.rumour if pair.query_is_rumour else pair.clarification


def validation_part(
    pairs: Sequence[PairExample], labels: Sequence[bool]
) -> tuple[list[PairExample], list[bool]]:
    """The groups whose query falls in the validation part (by a hash of its text)."""
    chosen = [i for i, p in enumerate(pairs) if in_validation(pair_text(_query(p)))]
    return [pairs[i] for i in chosen], [labels[i] for i in chosen]


def scores(
    model: PairRanker, pairs: Sequence[PairExample], labels: Sequence[bool]
) -> dict[str, float]:
    """Ranking quality over the groups that have a matching pair: MAP@1, MAP@5, recall@5."""
    values = model.score_pairs(pairs)
    by_group: dict[str, dict[str, float]] = {}
    relevant: dict[str, set[str]] = {}
    for i, (pair, label, value) in enumerate(zip(pairs, labels, values, strict=True)):
        by_group.setdefault(str(pair.group), {})[str(i)] = float(value)
        if label:
            relevant.setdefault(str(pair.group), set()).add(str(i))
    if not relevant:
        return {"map@1": 0.0, "map@5": 0.0, "recall@5": 0.0, "queries": 0}
    return retrieval_metrics({g: ranked(d) for g, d in by_group.items()}, relevant)


def _with_unanswered_copies(
    pairs: list[PairExample], labels: list[bool]
) -> tuple[list[PairExample], list[bool]]:
    """Add each answered group again without its answers. Most rumours in a live feed have
    no clarification yet, so the best candidate of a group is not a match by being best: the
    model has to learn how close a real answer is, not only which candidate is closest."""
    answered = {p.group for p, label in zip(pairs, labels, strict=True) if label}
    offset = 1 + max((p.group for p in pairs), default=-1)
    copies = [
        replace(p, group=p.group + offset)
        for p, label in zip(pairs, labels, strict=True)
        if p.group in answered and not label
    ]
    return pairs + copies, labels + [False] * len(copies)


def thresholds(
    model: PairRanker, pairs: Sequence[PairExample], labels: Sequence[bool]
) -> dict[str, float]:
    """Score thresholds on validation data: the best F1, and the lowest with 95% precision
    (a candidate for auto-confirmation). Empty when validation has no matching pair."""
    if not any(labels):
        return {}
    values = model.score_pairs(pairs)
    precision, recall, cuts = precision_recall_curve(list(labels), values)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    found = {"best_f1": round(float(cuts[int(np.argmax(f1[:-1]))]), 4)}
    precise = [float(c) for p, c in zip(precision[:-1], cuts, strict=True) if p >= 0.95]
    if precise:
        found["precision_95"] = round(min(precise), 4)
    return found


def train(
    pairs: Sequence[PairExample],
    labels: Sequence[bool],
    metadata: dict[str, Any],
    hold_out: bool = True,
) -> PairRanker:
    """Fit on the groups outside the validation part, measure on the rest (as item_model).
    Without `hold_out` it fits on everything: for evaluations that bring their own test set."""
    fitting = [
        i for i, p in enumerate(pairs) if not (hold_out and in_validation(pair_text(_query(p))))
    ]
    fit_pairs, fit_labels = _with_unanswered_copies(
        [pairs[i] for i in fitting], [labels[i] for i in fitting]
    )
    if not any(fit_labels) or all(fit_labels):
        raise ValueError("pair training needs both matching and non-matching pairs")
    pipeline = build_pipeline().fit(fit_pairs, fit_labels)
    digest = hashlib.sha256()
    for pair, label in zip(pairs, labels, strict=True):
        digest.update(
            f"{pair_text(pair.rumour)}\0{pair_text(pair.clarification)}\0{label}".encode()
        )
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    data_hash = digest.hexdigest()
    model = PairRanker(pipeline, f"pair-{stamp}-{data_hash[:8]}", {})
    model.metadata.update(
        {
            **metadata,
            "data_hash": data_hash,
            "pairs": len(pairs),
            "positives": int(sum(labels)),
            "trained_on_pairs": len(fitting),
            "sklearn_version": sklearn.__version__,
            "validation": scores(model, *validation_part(pairs, labels)) if hold_out else {},
            "thresholds": thresholds(model, *validation_part(pairs, labels)) if hold_out else {},
            "trained_at": stamp,
            "features": feature_names(),
        }
    )
    return model
