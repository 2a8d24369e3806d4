"""Evaluation reports: a precision-recall curve and a confusion matrix as PNG, and a Markdown
summary, from the scores an evaluation produced."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    average_precision_score,
    precision_recall_curve,
)


def best_threshold(relevant: Sequence[bool], scores: Sequence[float]) -> float:
    """The score threshold with the best F1 on these data."""
    precision, recall, thresholds = precision_recall_curve(relevant, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))]) if len(thresholds) else 0.5


def write_report(
    directory: Path,
    name: str,
    metrics: Mapping[str, object],
    scores: Sequence[float],
    relevant: Sequence[bool],
) -> list[Path]:
    """Write `<name>-pr.png`, `<name>-confusion.png` and `<name>.md`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    threshold = 0.5 if name == "rumour" else best_threshold(relevant, scores)
    predicted = [s >= threshold for s in scores]
    pr_path = directory / f"{name}-pr.png"
    figure, axes = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(relevant, scores, ax=axes, name=name)
    axes.set_title(f"{name}: precision-recall")
    figure.savefig(pr_path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    confusion_path = directory / f"{name}-confusion.png"
    figure, axes = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(
        relevant, predicted, ax=axes, display_labels=["no", "yes"], colorbar=False
    )
    axes.set_title(f"{name}: threshold {threshold:.3f}")
    figure.savefig(confusion_path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    summary = directory / f"{name}.md"
    summary.write_text(
        f"# Evaluation: {name}\n\n"
        f"```json\n{json.dumps(metrics, indent=2)}\n```\n\n"
        f"- scored pairs or items: {len(scores)}, positives: {sum(relevant)}\n"
        f"- average precision over all scores: "
        f"{average_precision_score(relevant, scores):.4f}\n"
        f"- confusion matrix at threshold {threshold:.3f}\n\n"
        f"![precision-recall]({pr_path.name})\n\n![confusion matrix]({confusion_path.name})\n",
        encoding="utf-8",
    )
    return [pr_path, confusion_path, summary]
