"""Validation split and ranking metrics, the latter as the CheckThat! scorer computes them
(trectools `get_map(depth=k)`)."""

import hashlib
from collections.abc import Mapping, Sequence

from sklearn.metrics import precision_recall_curve


def in_validation(key: str) -> bool:
    """One example in five, chosen by content, is kept for validation and never trained on."""
    return hashlib.sha256(key.encode()).digest()[0] % 5 == 0


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Document ids by score descending, ties by document id descending, as trec_eval does."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda ds: (ds[1], ds[0]), reverse=True)]


def average_precision(ranking: Sequence[str], relevant: set[str], k: int) -> float:
    """AP@k divided by the number of relevant documents (not by the number found)."""
    hits, total = 0, 0.0
    for position, doc in enumerate(ranking[:k], start=1):
        if doc in relevant:
            hits += 1
            total += hits / position
    return total / len(relevant) if relevant else 0.0


def retrieval_metrics(
    rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]]
) -> dict[str, float]:
    """MAP@1, MAP@5 and recall@5 over the queries that have relevant documents."""
    queries = [q for q in relevant if relevant[q]]
    if not queries:
        raise ValueError("no query has a relevant document")

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 6)

    return {
        "map@1": mean([average_precision(rankings.get(q, []), relevant[q], 1) for q in queries]),
        "map@5": mean([average_precision(rankings.get(q, []), relevant[q], 5) for q in queries]),
        "recall@5": mean(
            [len(set(rankings.get(q, [])[:5]) & relevant[q]) / len(relevant[q]) for q in queries]
        ),
        "queries": len(queries),
    }


def pr_curve(
    truth: Sequence[bool], scores: Sequence[float], max_points: int = 50
) -> dict[str, list[float]]:
    """Precision and recall at up to `max_points` thresholds, for the Models page to draw;
    empty lists when there is no positive example to find."""
    if not any(truth):
        return {"precision": [], "recall": []}
    precision, recall, _ = precision_recall_curve(list(truth), list(scores))
    step = max(1, -(-len(precision) // max_points))
    # Keep both ends: full recall at the lowest threshold, the start of the curve at the highest.
    keep = sorted({*range(0, len(precision), step), len(precision) - 1})
    return {
        "precision": [round(float(precision[i]), 4) for i in keep],
        "recall": [round(float(recall[i]), 4) for i in keep],
    }
