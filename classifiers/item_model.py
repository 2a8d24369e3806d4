"""The item classifier: rumour / clarification / other, one scikit-learn Pipeline."""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from classifiers import artifacts, embedder
from classifiers.evaluate import in_validation, pr_curve
from classifiers.style import ItemFeatures
from tracker.domain import LABELS, Prediction, TextForModel


@dataclass(frozen=True)
class LabelledText:
    text: TextForModel
    label: str


def model_document(item: TextForModel) -> str:
    """One string per item; the feed kind and language ride along as marker tokens."""
    return (
        f"{item.title}. {item.summary} __kind_{item.feed_kind} "
        f"__lang_{(item.language or 'xx')[:2].lower()}"
    )


# How far the sentence vector (centred on the training data's mean) counts beside the words.
# Chosen on PHEME leave-one-event-out over its seven events with the context blend, rumour F1:
# 0 (words only) 0.697, 0.5 0.750, 1.0 0.766, 3.0 0.737
# (docs/models.md, "Meaning across languages").
MEANING_SCALE = 1.0


class WordsAndMeaning(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """The model document's ItemFeatures, then the item's sentence vector (classifiers/
    embedder.py), centred and scaled. Words tell how an item is written in the languages the
    training data has; the vector tells what it says in any language the encoder knows, so what
    is learnt from English transfers to Romanian, Russian and Ukrainian. Input: one (document,
    vector) pair per item."""

    def __init__(self, scale: float = MEANING_SCALE):
        self.scale = scale

    def fit(self, rows: Sequence[tuple[str, np.ndarray]], y: Any = None) -> "WordsAndMeaning":
        self.words_ = ItemFeatures().fit([document for document, _ in rows])
        self.mean_ = np.vstack([vector for _, vector in rows]).mean(axis=0).astype(np.float64)
        return self

    def transform(self, rows: Sequence[tuple[str, np.ndarray]]) -> sparse.csr_matrix:
        words = self.words_.transform([document for document, _ in rows])
        meaning = self.scale * (np.vstack([vector for _, vector in rows]) - self.mean_)
        return sparse.hstack([words, sparse.csr_matrix(meaning)], format="csr")

    @property
    def text_columns(self) -> int:
        """The hashed text columns, which come first."""
        return int(self.words_.offsets_[-2])


# Inverse regularisation strength of the item model. Chosen on PHEME leave-one-event-out with
# the context blend (classifiers/context.py): 0.3 gave rumour-class F1 0.657, macro-F1 0.651;
# 1.0 gave 0.663 and 0.677; 3.0 gave 0.663 and 0.687, less steady as the blend's weight moves.
DEFAULT_C = 1.0


class CalibratedLogistic(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """Logistic regression whose scores a second, small multinomial regression calibrates,
    fitted on out-of-fold scores (vector scaling). Calibrated as CalibratedClassifierCV is,
    at the prediction cost of one linear model and without per-call input validation."""

    def __init__(self, C: float = DEFAULT_C, folds: int = 3, class_weight: str | None = "balanced"):
        self.C = C
        self.folds = folds
        self.class_weight = class_weight

    def fit(
        self, X: sparse.csr_matrix, y: Sequence[str], sample_weight: np.ndarray | None = None
    ) -> "CalibratedLogistic":
        # The optimiser's cost grows with the width it sees: fit on the hashed columns the
        # training data uses, and widen the weights again (unused columns weigh zero).
        X_width = X.shape[1]
        used = np.unique(X.indices)
        X = X[:, used]
        base = LogisticRegression(C=self.C, max_iter=1000, class_weight=self.class_weight)
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=0)
        fit_params = {"sample_weight": sample_weight} if sample_weight is not None else {}
        scores = cross_val_predict(
            base, X, y, cv=folds, method="decision_function", params=fit_params
        )
        self.calibrator_ = LogisticRegression(C=10.0).fit(
            scores.reshape(len(y), -1), y, sample_weight=sample_weight
        )
        base.fit(X, y, **fit_params)
        self.classes_ = base.classes_
        # Stored as (width, classes), contiguous: sparse @ dense copies a transposed view.
        self.weights_ = np.zeros((X_width, base.coef_.shape[0]), dtype=np.float64)
        self.weights_[used] = base.coef_.T
        self.intercept_ = base.intercept_
        return self

    def predict_proba(self, X: sparse.csr_matrix) -> np.ndarray:
        scores = X @ self.weights_ + self.intercept_
        logits = scores @ self.calibrator_.coef_.T + self.calibrator_.intercept_
        if logits.shape[1] == 1:  # two classes: one logit, for the second
            logits = np.hstack([np.zeros_like(logits), logits])
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return np.asarray(odds / odds.sum(axis=1, keepdims=True))

    def predict(self, X: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])


def build_pipeline(C: float = DEFAULT_C) -> Pipeline:
    return Pipeline([("features", WordsAndMeaning()), ("classifier", CalibratedLogistic(C=C))])


def inputs(pipeline: Pipeline, items: Sequence[TextForModel]) -> list[Any]:
    """What the pipeline's first step reads: (document, vector) pairs, or for models trained
    before vectors (ItemFeatures first) the documents alone. Items without a known vector are
    embedded now."""
    documents = [model_document(i) for i in items]
    if isinstance(pipeline.steps[0][1], ItemFeatures):
        return documents
    return list(zip(documents, embedder.completed(items), strict=True))


def text_columns(pipeline: Pipeline) -> int:
    """How many of the features are hashed text columns (they come first)."""
    features = pipeline.steps[0][1]
    if isinstance(features, ItemFeatures):
        return int(features.offsets_[-2])
    return int(features.text_columns)


class ItemClassifier:
    def __init__(self, pipeline: Pipeline, version: str, metadata: dict[str, Any]):
        self.pipeline = pipeline
        self.version = version
        self.metadata = metadata

    def predict(self, items: Sequence[TextForModel]) -> list[Prediction]:
        if not items:
            return []
        probabilities = self.pipeline.predict_proba(inputs(self.pipeline, items))
        classes = [str(c) for c in self.pipeline.classes_]
        # Whole-array operations: per-value Python rounding cost as much as a feature view.
        best = probabilities.argmax(axis=1).tolist()
        top = probabilities.max(axis=1).tolist()
        rounded = np.round(probabilities, 4).tolist()
        predictions = [
            Prediction(
                label=classes[b],
                probability=p,
                probabilities=dict(zip(classes, row, strict=True)),
            )
            for b, p, row in zip(best, top, rounded, strict=True)
        ]
        return predictions

    def to_bytes(self) -> bytes:
        return artifacts.dump(self.pipeline)

    @classmethod
    def from_bytes(
        cls, artifact: bytes, version: str, metadata: dict[str, Any]
    ) -> "ItemClassifier":
        """ArtifactError when `artifact` is not an item model in skops' format: nothing in it
        runs (classifiers.artifacts)."""
        return cls(artifacts.load(artifact, "item"), version, metadata)


def data_hash(examples: Sequence[LabelledText]) -> str:
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([model_document(ex.text), ex.label]).encode())
    return digest.hexdigest()


def validation_part(examples: Sequence[LabelledText]) -> list[LabelledText]:
    return [ex for ex in examples if in_validation(model_document(ex.text))]


def scores(model: "ItemClassifier", examples: Sequence[LabelledText]) -> dict[str, float]:
    """Macro-F1 over the three labels and F1 of the rumour class."""
    if not examples:
        return {"macro_f1": 0.0, "rumour_f1": 0.0}
    truth = [ex.label for ex in examples]
    predicted = [p.label for p in model.predict([ex.text for ex in examples])]
    return {
        "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4),
        "rumour_f1": round(
            float(f1_score(truth, predicted, labels=["rumour"], average="macro", zero_division=0)),
            4,
        ),
    }


def rumour_pr_curve(
    model: "ItemClassifier", examples: Sequence[LabelledText]
) -> dict[str, list[float]]:
    """Precision and recall of the rumour label as its probability threshold moves."""
    predictions = model.predict([ex.text for ex in examples])
    return pr_curve(
        [ex.label == "rumour" for ex in examples],
        [p.probabilities.get("rumour", 0.0) for p in predictions],
    )


def train(
    examples: Sequence[LabelledText],
    metadata: dict[str, Any] | None = None,
    hold_out: bool = True,
    weights: Sequence[float] | None = None,
    C: float = DEFAULT_C,
) -> ItemClassifier:
    """Fit on the examples outside the validation part and measure on the rest. The
    validation part is chosen by a hash of the text, so no model ever trains on it and a
    champion and its challenger are compared on data neither has seen. Without `hold_out`
    it fits on everything: for evaluations that bring their own test set. `weights`, one per
    example, weigh the examples in the fit; `C` is the inverse regularisation strength."""
    unknown = {ex.label for ex in examples} - set(LABELS)
    if unknown:
        raise ValueError(f"unknown labels in training data: {sorted(unknown)}")
    weighed = list(zip(examples, weights or [1.0] * len(examples), strict=True))
    fitting = [
        (ex, w) for ex, w in weighed if not (hold_out and in_validation(model_document(ex.text)))
    ]
    if len({ex.label for ex, _ in fitting}) < 2:
        raise ValueError("training data needs examples of at least two labels")
    # Small problems: BLAS threads only contend with each other (and with other processes).
    pipeline = build_pipeline(C)
    with threadpool_limits(limits=1):
        pipeline.fit(
            inputs(pipeline, [ex.text for ex, _ in fitting]),
            [ex.label for ex, _ in fitting],
            classifier__sample_weight=np.array([w for _, w in fitting]),
        )
    digest = data_hash(examples)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    model = ItemClassifier(pipeline, f"item-{stamp}-{digest[:8]}", {})
    model.metadata.update(
        {
            **(metadata or {}),
            "data_hash": digest,
            "examples": len(examples),
            "trained_on_examples": len(fitting),
            "sklearn_version": sklearn.__version__,
            "validation": scores(model, validation_part(examples)) if hold_out else {},
            "pr_curve": rumour_pr_curve(model, validation_part(examples)) if hold_out else None,
            "trained_at": stamp,
        }
    )
    return model
