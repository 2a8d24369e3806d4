"""The item classifier: rumour / clarification / other, one scikit-learn Pipeline."""

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline

from classifiers.evaluate import in_validation
from classifiers.style import StyleFeatures, topic_free
from classifiers.text import CUES, cue_counts, fold, strip_links
from tracker.domain import LABELS, Prediction, TextForModel


@dataclass(frozen=True)
class LabelledText:
    text: TextForModel
    label: str


def model_document(item: TextForModel) -> str:
    """One string per item; the feed kind and language ride along as marker tokens."""
    return (
        f"{strip_links(item.title)}. {strip_links(item.summary)} __kind_{item.feed_kind} "
        f"__lang_{(item.language or 'xx')[:2].lower()}"
    )


class CueFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Counts of denial / attribution / hedging / official-statement cues, log-scaled."""

    def fit(self, documents: Sequence[str], y: Any = None) -> "CueFeatures":
        return self

    def transform(self, documents: Sequence[str]) -> sparse.csr_matrix:
        rows = [[np.log1p(count) for count in cue_counts(doc).values()] for doc in documents]
        return sparse.csr_matrix(np.asarray(rows, dtype=np.float64).reshape(-1, len(CUES)))


WORDS_AND_MARKS = r"(?u)\w\w+|[?!]"


def _hashed(preprocessor: Any, **options: Any) -> Pipeline:
    return make_pipeline(
        HashingVectorizer(
            preprocessor=preprocessor,
            n_features=2**16,
            alternate_sign=False,
            norm=None,
            **options,
        ),
        TfidfTransformer(sublinear_tf=True),
    )


# Measured on PHEME leave-one-event-out (README): the topic-free views carry across events,
# the words (down-weighted) keep vocabulary for Romanian and Cyrillic text, and character
# n-grams were dropped: no better across events, and half the prediction speed.
def build_pipeline() -> Pipeline:
    shape = _hashed(topic_free, ngram_range=(1, 2), tokenizer=str.split, token_pattern=None)
    words = _hashed(fold, ngram_range=(1, 2), token_pattern=WORDS_AND_MARKS)
    features = FeatureUnion(
        [("shape", shape), ("cues", CueFeatures()), ("style", StyleFeatures()), ("words", words)],
        transformer_weights={"words": 0.5},
    )
    classifier = LogisticRegression(C=0.3, max_iter=3000, class_weight="balanced")
    return Pipeline([("features", features), ("classifier", classifier)])


class ItemClassifier:
    def __init__(self, pipeline: Pipeline, version: str, metadata: dict[str, Any]):
        self.pipeline = pipeline
        self.version = version
        self.metadata = metadata

    def predict(self, items: Sequence[TextForModel]) -> list[Prediction]:
        if not items:
            return []
        probabilities = self.pipeline.predict_proba([model_document(i) for i in items])
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
        buffer = io.BytesIO()
        joblib.dump(self.pipeline, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(
        cls, artifact: bytes, version: str, metadata: dict[str, Any]
    ) -> "ItemClassifier":
        # joblib unpickles code: only our own artifacts, read from our own database, come here.
        pipeline = joblib.load(io.BytesIO(artifact))
        return cls(pipeline, version, metadata)


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


def train(
    examples: Sequence[LabelledText],
    metadata: dict[str, Any] | None = None,
    hold_out: bool = True,
) -> ItemClassifier:
    """Fit on the examples outside the validation part and measure on the rest. The
    validation part is chosen by a hash of the text, so no model ever trains on it and a
    champion and its challenger are compared on data neither has seen. Without `hold_out`
    it fits on everything: for evaluations that bring their own test set."""
    unknown = {ex.label for ex in examples} - set(LABELS)
    if unknown:
        raise ValueError(f"unknown labels in training data: {sorted(unknown)}")
    fitting = [ex for ex in examples if not (hold_out and in_validation(model_document(ex.text)))]
    if len({ex.label for ex in fitting}) < 2:
        raise ValueError("training data needs examples of at least two labels")
    pipeline = build_pipeline().fit(
        [model_document(ex.text) for ex in fitting], [ex.label for ex in fitting]
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
            "trained_at": stamp,
        }
    )
    return model
