"""Retraining on analysts' decisions without forgetting the shipped models.

The shipped model (classifiers/bundle.py) stays what it is: its features (hashing, IDF,
scaling) and its calibrator are frozen, and only its last linear layer moves. The new weights
are the shipped ones plus a correction fitted on the decisions, with an L2 penalty on the
correction, so a handful of decisions moves the model a little, near what they are about, and
no decisions leave it as shipped (the prior-anchored adaptation of Chelba & Acero, 2004). The
result is the same pipeline, of the same types, as the shipped model: it is stored and loaded
as any other (classifiers/artifacts.py).

A correction is always fitted from the shipped model and all the decisions, never on top of
an earlier correction, so the decisions are not counted twice.
"""

import copy
import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sklearn
from scipy import optimize, sparse, special

from classifiers import item_model, pair_model
from classifiers.evaluate import in_validation
from classifiers.item_model import ItemClassifier, LabelledText, model_document
from classifiers.pair_model import PairExample, PairRanker
from classifiers.text_facts import pair_text
from tracker.domain import TextForModel

# L2 strength of the correction, in units of one decision's loss; chosen by measurement
# (docs/guide.md, "How it works"). The pair model's features are few and dense, so every decision
# moves all of them: it needs a firmer hold than the item model's sparse text features.
ITEM_PENALTY = 1.0
PAIR_PENALTY = 10.0

Loss = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _minimise(loss: Loss, size: int) -> np.ndarray:
    found = optimize.minimize(loss, np.zeros(size), jac=True, method="L-BFGS-B")
    return np.asarray(found.x)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    odds = np.exp(logits)
    return np.asarray(odds / odds.sum(axis=1, keepdims=True))


def item_fitting(examples: Sequence[LabelledText], hold_out: bool) -> list[LabelledText]:
    return [ex for ex in examples if not (hold_out and in_validation(model_document(ex.text)))]


def adapt_item(
    base: ItemClassifier,
    examples: Sequence[LabelledText],
    metadata: dict[str, Any] | None = None,
    penalty: float = ITEM_PENALTY,
    hold_out: bool = True,
    anchor: Sequence[TextForModel] = (),
) -> ItemClassifier:
    """The base classifier corrected by `examples` (outside the validation part unless not
    `hold_out`), and held to its own predictions on the `anchor` texts (a deployment's recent
    items, labelled or not): decisions are often corrections of the base's errors, and fitted
    alone they teach the model to turn every item round, not only items like theirs (measured:
    docs/guide.md, "How it works"). The base itself is not changed."""
    pipeline = copy.deepcopy(base.pipeline)
    fitting = item_fitting(examples, hold_out)
    head = pipeline.named_steps["classifier"]
    classes = [str(c) for c in head.classes_]
    unknown = {ex.label for ex in fitting} - set(classes)
    if unknown:
        raise ValueError(f"labels the base model does not know: {sorted(unknown)}")
    shift = 0.0
    if fitting:
        rows = item_model.inputs(pipeline, [ex.text for ex in fitting] + list(anchor))
        matrix = pipeline.named_steps["features"].transform(rows)
        targets = np.eye(len(classes))[[classes.index(ex.label) for ex in fitting]]
        if anchor:
            soft = base.pipeline.predict_proba(rows[len(fitting) :])
            targets = np.vstack([targets, soft])
        # The hashed text columns come first; the style counts and the vector after them are
        # left alone.
        text_columns = item_model.text_columns(pipeline)
        shift = _correct_item_head(head, sparse.csr_matrix(matrix), targets, penalty, text_columns)
    return _item_model(pipeline, base, examples, len(fitting), shift, metadata or {})


def _correct_item_head(
    head: Any, matrix: sparse.csr_matrix, targets: np.ndarray, penalty: float, text_columns: int
) -> float:
    """Move the classifier's weights on the text columns the given rows use; returns the
    correction's size. Not the intercept nor the style counts (length, marks, cue counts):
    every item has those, so a correction there would move every item, not the ones like the
    decisions. Columns no row uses have no evidence and stay as they are."""
    used = np.unique(matrix.indices)
    used = used[used < text_columns]
    local = matrix[:, used]
    classes = head.weights_.shape[1]
    base_scores = np.asarray(matrix @ head.weights_) + head.intercept_
    calibration = head.calibrator_.coef_  # (logits, scores): one logit for two classes

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        scores = base_scores + local @ theta.reshape(len(used), classes)
        logits = scores @ calibration.T + head.calibrator_.intercept_
        if logits.shape[1] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        probabilities = _softmax(logits)
        value = -(targets * np.log(np.maximum(probabilities, 1e-12))).sum()
        residual = probabilities - targets
        if calibration.shape[0] == 1:
            residual = residual[:, 1:]
        gradient = (local.T @ (residual @ calibration)).ravel()
        return float(value + penalty / 2 * theta @ theta), gradient + penalty * theta

    theta = _minimise(loss, len(used) * classes)
    head.weights_ = head.weights_.copy()
    head.weights_[used] += theta.reshape(len(used), classes)
    return float(np.linalg.norm(theta))


def _item_model(
    pipeline: Any,
    base: ItemClassifier,
    examples: Sequence[LabelledText],
    fitted_on: int,
    shift: float,
    metadata: dict[str, Any],
) -> ItemClassifier:
    digest = item_model.data_hash(examples)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    model = ItemClassifier(pipeline, f"item-{stamp}-{digest[:8]}", {})
    model.metadata.update(
        {
            **metadata,
            **_provenance(base.version, base.metadata, len(examples), fitted_on, shift),
            "data_hash": digest,
            "examples": int(base.metadata.get("examples", 0)) + len(examples),
            "trained_at": stamp,
        }
    )
    return model


def _provenance(
    version: str, metadata: dict[str, Any], decisions: int, fitted_on: int, shift: float
) -> dict[str, Any]:
    return {
        "base_version": version,
        "base_validation": metadata.get("validation"),
        "decisions": decisions,
        "trained_on_decisions": fitted_on,
        "correction_norm": round(shift, 4),
        "sklearn_version": sklearn.__version__,
    }


def pair_fitting(
    pairs: Sequence[PairExample], labels: Sequence[bool], hold_out: bool
) -> tuple[list[PairExample], list[bool]]:
    chosen = [i for i, p in enumerate(pairs) if not (hold_out and in_validation(_query_text(p)))]
    return [pairs[i] for i in chosen], [labels[i] for i in chosen]


def _query_text(pair: PairExample) -> str:
    return pair_text(pair.rumour if pair.query_is_rumour else pair.clarification)


def adapt_pair(
    base: PairRanker,
    pairs: Sequence[PairExample],
    labels: Sequence[bool],
    metadata: dict[str, Any] | None = None,
    penalty: float = PAIR_PENALTY,
    hold_out: bool = True,
) -> PairRanker:
    """The base re-ranker corrected by decided pairs (groups outside the validation part
    unless not `hold_out`); the base itself is not changed."""
    pipeline = copy.deepcopy(base.pipeline)
    fit_pairs, fit_labels = pair_fitting(pairs, labels, hold_out)
    shift = 0.0
    if fit_pairs:
        # As the base was trained: each answered group again without its answers.
        fit_pairs, fit_labels = pair_model.with_unanswered_copies(fit_pairs, fit_labels)
        rows = pipeline[:-1].transform(fit_pairs)
        truth = np.array(fit_labels, dtype=float)
        shift = _correct_pair_head(
            pipeline.named_steps["classifier"], np.asarray(rows), truth, penalty
        )
    digest = _pair_hash(pairs, labels)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    model = PairRanker(pipeline, f"pair-{stamp}-{digest[:8]}", {})
    model.metadata.update(
        {
            **(metadata or {}),
            **_provenance(base.version, base.metadata, len(pairs), len(fit_pairs), shift),
            "data_hash": digest,
            "pairs": int(base.metadata.get("pairs", 0)) + len(pairs),
            "positives": int(sum(labels)),
            "trained_at": stamp,
            "features": base.metadata.get("features"),
        }
    )
    return model


def _pair_hash(pairs: Sequence[PairExample], labels: Sequence[bool]) -> str:
    digest = hashlib.sha256()
    for pair, label in zip(pairs, labels, strict=True):
        digest.update(
            f"{pair_text(pair.rumour)}\0{pair_text(pair.clarification)}\0{label}".encode()
        )
    return digest.hexdigest()


def _correct_pair_head(head: Any, rows: np.ndarray, truth: np.ndarray, penalty: float) -> float:
    """Move the logistic regression's weights and intercept; returns the correction's size."""
    base_logits = rows @ head.coef_[0] + head.intercept_[0]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logits = base_logits + rows @ theta[:-1] + theta[-1]
        value = (np.logaddexp(0, logits) - truth * logits).sum()  # log loss, from the logits
        slope = special.expit(logits) - truth
        gradient = np.concatenate([rows.T @ slope, [slope.sum()]])
        return float(value + penalty / 2 * theta @ theta), gradient + penalty * theta

    theta = _minimise(loss, rows.shape[1] + 1)
    head.coef_ = head.coef_ + theta[:-1]
    head.intercept_ = head.intercept_ + theta[-1]
    return float(np.linalg.norm(theta))
