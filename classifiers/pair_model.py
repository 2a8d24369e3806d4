"""The learned pair re-ranker: how likely a clarification answers a rumour, one sklearn Pipeline.

Rows are (rumour, clarification) pairs grouped by the item being paired (the query): the
features compare the two texts (character and word TF-IDF cosine, BM25, shared numbers,
entities and cross-language concepts), their time gap and sources, and how each lexical score
stands against the other candidates of the same query, which matters more than its raw value.
Pairs written in two scripts get their meaning scores again, apart, as no word can match there.

The texts' hashed counts come from hashing.py, weighted by tfidf.py, read through the cache
of vector_cache.py; what is read of each text (pair_text, TextFacts) is text_facts.py's.
Fitted models are stored by the import path of PairFeatures (artifacts.py): it stays here.
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from classifiers import artifacts, embedder
from classifiers.evaluate import in_validation, pr_curve, ranked, retrieval_metrics
from classifiers.hashing import CHAR_HASHING, legacy_char_counts
from classifiers.text import CUES, WORD, fold
from classifiers.text_facts import TextFacts, pair_text
from classifiers.tfidf import idf_weights, tfidf
from classifiers.vector_cache import text_facts, text_vectors
from tracker.domain import FEED_KINDS, PairScore, TextForModel

# Days between a rumour and its clarification, when they are close in time: a debunk usually
# follows within days, and a claim still spreading meets one of the days before. A
# clarification published longer than CLOSE_BEFORE_DAYS before the rumour (a rumour coming
# round again) is described by its age instead, in its own features.
CLOSE_BEFORE_DAYS = 14
GAP_EDGES = (3, 14, 60)


@dataclass(frozen=True)
class PairExample:
    """One candidate pair; `group` ties together the candidates of one query item."""

    rumour: TextForModel
    clarification: TextForModel
    group: int
    query_is_rumour: bool = True


# The scores read against the query's other candidates (_in_group), in their columns' order.
LEXICAL = ("char_cos", "word_cos", "bm25", "concepts", "meaning_cos")
GROUP_VIEWS = ("z", "below_best", "rank")
_MEANING_AT = LEXICAL.index("meaning_cos")


def feature_names() -> list[str]:
    in_group = [f"{name}_{view}" for name in LEXICAL for view in GROUP_VIEWS]
    return [
        *LEXICAL,
        *in_group,
        "shared_numbers",
        "shared_entities",
        "author_named",
        "close_in_time",
        *[f"gap_bucket_{i}" for i in range(len(GAP_EDGES) + 1)],
        "clarification_older",
        "clarification_age_log_days",
        *[f"clarification_kind_{k}" for k in FEED_KINDS],
        "rumour_kind_social",
        *[f"clarification_cue_{family}" for family in CUES],
        "other_script",
        *[f"{name}_other_script" for name in MEANING],
    ]


# The meaning scores, kept again for pairs in two scripts (a Russian quote, an English
# debunk): there words cannot match, and the model learns how far to trust meaning alone.
MEANING = ("meaning_cos", *(f"meaning_cos_{view}" for view in GROUP_VIEWS))


class PairFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Turns PairExamples into feature rows; fit learns IDF and average length from the
    distinct texts it is given, so scores do not depend on the order of candidates."""

    def fit(self, pairs: Sequence[PairExample], y: Any = None) -> "PairFeatures":
        texts = list({pair_text(t): None for p in pairs for t in (p.rumour, p.clarification)})
        vectors = text_vectors(texts)
        self.char_hashing_ = CHAR_HASHING
        self.char_idf_ = idf_weights(vectors.chars)
        words = vectors.words
        self.word_idf_ = idf_weights(words)
        total = float(words.data.sum(dtype=np.float64))
        self.average_length_ = total / max(len(texts), 1) or 1.0
        self.meaning_ = True
        self.scripts_ = True
        lexical, _, _ = self._lexical(pairs)
        self.background_ = np.vstack([lexical.mean(axis=0), lexical.std(axis=0)])
        return self

    def transform(self, pairs: Sequence[PairExample]) -> np.ndarray:
        if not pairs:
            return np.zeros((0, len(feature_names())))
        lexical, pair_facts, other_script = self._lexical(pairs)
        groups = np.asarray([p.group for p in pairs])
        background = getattr(self, "background_", None)
        in_group = _in_group(lexical, groups, background)
        columns = [lexical, in_group, pair_facts[:, 1:]]
        # Models fitted before the script features read the same pairs without them.
        if getattr(self, "scripts_", False):
            views = len(GROUP_VIEWS)
            in_meaning = in_group[:, _MEANING_AT * views : (_MEANING_AT + 1) * views]
            meaning = np.column_stack([lexical[:, _MEANING_AT], in_meaning])
            columns += [other_script[:, None], meaning * other_script[:, None]]
        return np.hstack(columns)

    def _lexical(self, pairs: Sequence[PairExample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The lexical scores of each pair, its other facts (concepts first), and whether its
        two texts are written in different scripts."""
        rumours = [pair_text(p.rumour) for p in pairs]
        clarifications = [pair_text(p.clarification) for p in pairs]
        # Each distinct text is vectorised once: a query repeats across all its candidates.
        texts = list(dict.fromkeys([*rumours, *clarifications]))
        position = {text: i for i, text in enumerate(texts)}
        r = np.asarray([position[t] for t in rumours])
        c = np.asarray([position[t] for t in clarifications])
        queries = np.where([p.query_is_rumour for p in pairs], r, c)
        documents = np.where([p.query_is_rumour for p in pairs], c, r)
        vectors = text_vectors(texts)
        legacy = getattr(self, "char_hashing_", None) != CHAR_HASHING
        chars = tfidf(legacy_char_counts(texts) if legacy else vectors.chars, self.char_idf_)
        counts = vectors.words
        words = tfidf(counts, self.word_idf_)
        facts = vectors.facts
        pair_facts = np.asarray(
            [_pair_facts(p, facts[i], facts[j]) for p, i, j in zip(pairs, r, c, strict=True)]
        )
        columns = [
            _rowwise(chars, r, chars, c),
            _rowwise(words, r, words, c),
            _rowwise((counts > 0).astype(np.float32), queries, self._bm25(counts), documents),
            pair_facts[:, 0],
        ]
        # Models fitted before the embedder read words alone.
        if getattr(self, "meaning_", False):
            first = {text: p.rumour for p, text in zip(pairs, rumours, strict=True)}
            first.update({t: p.clarification for p, t in zip(pairs, clarifications, strict=True)})
            meaning = embedder.vectors([first[t] for t in texts])
            cosine = np.einsum("ij,ij->i", meaning[r], meaning[c])
            # An unknown vector (an item stored before vectors) reads as the usual candidate.
            background = getattr(self, "background_", None)
            usual = background[0][_MEANING_AT] if background is not None else np.nanmean(cosine)
            columns.append(np.where(np.isnan(cosine), usual, cosine))
        other_script = np.asarray(
            [facts[i].cyrillic != facts[j].cyrillic for i, j in zip(r, c, strict=True)], dtype=float
        )
        return np.column_stack(columns), pair_facts, other_script

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
    left, left_at = np.unique(a_rows, return_inverse=True)
    right, right_at = np.unique(b_rows, return_inverse=True)
    if left.size * right.size <= GRAM_CELLS:
        # Scoring one item's candidates: the dot products of its rows with theirs at once,
        # then the pairs' cells. Not every text with every text: one query's row against
        # its 60 candidates is a sixtieth of that work.
        gram: np.ndarray = (a[left] @ b[right].T).toarray()
        picked: np.ndarray = gram[left_at, right_at]
        return picked
    return np.asarray(a[a_rows].multiply(b[b_rows]).sum(axis=1)).ravel()


# Up to this many dot products, all of them at once are cheaper than picking rows pair by pair.
GRAM_CELLS = 1_000_000


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


# Candidates of the training data's average that every group is read as also holding: a lone
# candidate is then judged against what candidates usually score, not against itself alone.
BACKGROUND_CANDIDATES = 5


def _in_group(lexical: np.ndarray, groups: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """Each lexical score against its group: z-score, distance below the best, and log rank.
    With `background` (the training candidates' mean and standard deviation of each score),
    the group's mean and spread shrink towards it, the best is at least one deviation above
    its mean, and a score under its mean ranks after its candidates, so a query with few
    candidates does not make a weak one look like the best."""
    out = np.zeros((lexical.shape[0], lexical.shape[1] * 3))
    order = np.argsort(groups, kind="stable")
    _, starts = np.unique(groups[order], return_index=True)
    for rows in np.split(order, starts[1:]):
        values = lexical[rows]
        ranks = (-values).argsort(axis=0).argsort(axis=0)
        if background is None:  # models fitted before BACKGROUND_CANDIDATES
            z = (values - values.mean(axis=0)) / (values.std(axis=0) + 1e-9)
            below = values - values.max(axis=0)
        else:
            z, below = _against_background(values, background)
            # The background candidates rank above a score below their mean.
            ranks = ranks + BACKGROUND_CANDIDATES * (values < background[0])
        ranks = np.log1p(ranks)
        out[rows] = np.column_stack(
            [np.column_stack(v) for v in zip(z.T, below.T, ranks.T, strict=True)]
        )
    return out


def _against_background(
    values: np.ndarray, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    k, n = BACKGROUND_CANDIDATES, len(values)
    mean, std = background
    shrunk = (values.sum(axis=0) + k * mean) / (n + k)
    spread = ((values - shrunk) ** 2).sum(axis=0) + k * (std**2 + (mean - shrunk) ** 2)
    z = (values - shrunk) / (np.sqrt(spread / (n + k)) + 1e-9)
    below = values - np.maximum(values.max(axis=0), mean + std)
    return z, below


def _pair_facts(pair: PairExample, rumour: TextFacts, clarification: TextFacts) -> list[float]:
    rumour_item, clarification_item = pair.rumour, pair.clarification
    shared_entities = rumour.entities & clarification.entities
    author = {w for w in WORD.findall(fold(rumour_item.author or "")) if len(w) > 2}
    gap = _gap_days(rumour_item, clarification_item)
    buckets = [0.0] * (len(GAP_EDGES) + 1)
    close = gap is not None and gap >= -CLOSE_BEFORE_DAYS
    older = gap is not None and not close
    if gap is not None and close:
        buckets[sum(abs(gap) >= edge for edge in GAP_EDGES)] = 1.0
    return [
        _jaccard(rumour.concepts, clarification.concepts),
        math.log1p(len(rumour.numbers & clarification.numbers)),
        len(shared_entities) / (1 + len(rumour.entities)),
        float(any(word in clarification.folded for word in author)),
        float(close),
        *buckets,
        float(older),
        math.log1p(-gap) if gap is not None and older else 0.0,
        *[float(clarification_item.feed_kind == kind) for kind in FEED_KINDS],
        float(rumour_item.feed_kind == "social"),
        *clarification.cues,
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
        if not pairs:
            return []
        # The texts were just vectorised for the features: their facts come from the cache.
        facts = text_facts([pair_text(query), *(pair_text(c) for c in candidates)])
        shared = [
            _shared(facts[0], f) if query_is_rumour else _shared(f, facts[0]) for f in facts[1:]
        ]
        return [
            PairScore(score=round(float(s), 4), shared_terms=terms)
            for terms, s in zip(shared, self.score_pairs(pairs), strict=True)
        ]

    def to_bytes(self) -> bytes:
        return artifacts.dump(self.pipeline)

    @classmethod
    def from_bytes(cls, artifact: bytes, version: str, metadata: dict[str, Any]) -> "PairRanker":
        """ArtifactError when `artifact` is not a pair model in skops' format: nothing in it
        runs (classifiers.artifacts)."""
        return cls(artifacts.load(artifact, "pair"), version, metadata)


def explain(rumour: TextForModel, clarification: TextForModel) -> tuple[str, ...]:
    """What the two texts share: words, numbers and cross-language concepts."""
    return _shared(*text_facts([pair_text(rumour), pair_text(clarification)]))


def _shared(a: TextFacts, b: TextFacts) -> tuple[str, ...]:
    words = (set(a.words) & set(b.words)) | (a.numbers & b.numbers)
    shared_concepts = {f"~{c}" for c in a.concepts & b.concepts}
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


def with_unanswered_copies(
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


def matching_pr_curve(
    model: PairRanker, pairs: Sequence[PairExample], labels: Sequence[bool]
) -> dict[str, list[float]]:
    """Precision and recall of "this pair matches" as the score threshold moves."""
    return pr_curve(labels, [float(v) for v in model.score_pairs(pairs)])


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
    fit_pairs, fit_labels = with_unanswered_copies(
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
            "pr_curve": matching_pr_curve(model, *validation_part(pairs, labels))
            if hold_out
            else None,
            "trained_at": stamp,
            "features": feature_names(),
        }
    )
    return model
