"""Evaluate rumour detection on PHEME-format data as the workers classify: the item classifier,
trained afresh by the shipped recipe (classifiers/recipe.py) or given (the bundle, the active
model), then the context of similar earlier items (the test items before each one, in time
order). Optionally leaves one event out at a time."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import f1_score

from classifiers import context, recipe
from classifiers.datasets import DatasetError, EventText, load_pheme
from classifiers.item_model import ItemClassifier

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RumourEvaluation:
    metrics: dict[str, object]
    # Per test item: the rumour probability and whether it is a rumour, for the PR curve.
    scores: list[float]
    relevant: list[bool]
    # The version scored, or how the per-fold models were made.
    model: str


def _folds(
    train: list[EventText], test: list[EventText], events: Sequence[str]
) -> list[tuple[str, list[EventText], list[EventText]]]:
    if not events:
        return [("all", train, test)]
    known = {row.event for row in test}
    missing = [e for e in events if e not in known]
    if missing:
        raise DatasetError(f"events not in the test file: {missing}; it has {sorted(known)}")
    return [
        (e, [r for r in train if r.event != e], [r for r in test if r.event == e]) for e in events
    ]


def evaluate_rumour(
    train_files: Sequence[Path],
    test_file: Path,
    events: Sequence[str],
    progress: Progress,
    model: ItemClassifier | None = None,
) -> RumourEvaluation:
    """Train per fold by the shipped recipe, or score `model` (then `train_files` go unused)."""
    train = [row for path in train_files for row in load_pheme(path, progress)]
    test = load_pheme(test_file, progress)
    truth: list[bool] = []
    predicted: list[bool] = []
    alone: list[bool] = []  # the item model's own labels, without context
    scores: list[float] = []
    per_event: dict[str, float] = {}
    for event, fold_train, fold_test in _folds(train, test, events):
        texts = [r.example.text for r in fold_test]
        own = _classifier(event, fold_train, model, progress).predict(texts)
        progress(f"{event}: tested on {len(fold_test)}")
        predictions = context.with_context(texts, own, [])
        fold_truth = [r.example.label == "rumour" for r in fold_test]
        fold_predicted = [p.label == "rumour" for p in predictions]
        alone += [p.label == "rumour" for p in own]
        per_event[event] = round(float(f1_score(fold_truth, fold_predicted, zero_division=0)), 4)
        truth += fold_truth
        predicted += fold_predicted
        scores += [p.probabilities.get("rumour", 0.0) for p in predictions]
    metrics: dict[str, object] = {
        "rumour_f1": round(float(f1_score(truth, predicted, zero_division=0)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 4),
        "n": len(truth),
        "without_context": {
            "rumour_f1": round(float(f1_score(truth, alone, zero_division=0)), 4),
            "macro_f1": round(float(f1_score(truth, alone, average="macro", zero_division=0)), 4),
        },
    }
    if events:
        metrics["per_event_rumour_f1"] = per_event
    trained = "trained per fold by the shipped recipe"
    return RumourEvaluation(metrics, scores, truth, model.version if model else trained)


def _classifier(
    event: str, fold_train: list[EventText], given: ItemClassifier | None, progress: Progress
) -> ItemClassifier:
    if given is not None:
        return given
    examples = recipe.item_examples(fold_train)
    progress(f"{event}: training on {len(examples)} (seed and PHEME)")
    return recipe.train_item(examples, hold_out=False)
