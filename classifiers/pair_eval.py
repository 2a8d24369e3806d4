"""Evaluate the pair re-ranker on CheckThat!-format retrieval data: a model trained afresh by the
shipped recipe (classifiers/recipe.py), or a given one (the bundle, the active model), ranking
each test query's candidates from an in-process index over the test directory's collection."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers import recipe
from classifiers.datasets import load_checkthat_split
from classifiers.evaluate import ranked, retrieval_metrics
from classifiers.pair_candidates import Collection, candidate_pairs
from classifiers.pair_model import PairRanker

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PairingEvaluation:
    metrics: dict[str, float]
    ranker: PairRanker
    # Per test candidate: its score and whether it is relevant, for the precision-recall curve.
    scores: list[float]
    relevant: list[bool]


def train_on(
    sources: Sequence[tuple[Path, str]], progress: Progress, collections: dict[Path, Collection]
) -> PairRanker:
    pairs, labels = recipe.pair_examples(sources, progress, collections)
    progress(f"fitting on {len(pairs)} candidate pairs")
    trained_on = [f"{d.name}:{s}" for d, s in sources]
    return recipe.train_pair(pairs, labels, hold_out=False, metadata={"trained_on": trained_on})


def evaluate_pairing(
    train_sources: Sequence[tuple[Path, str]] | None,
    test: tuple[Path, str],
    progress: Progress,
    ranker: PairRanker | None = None,
) -> PairingEvaluation:
    """Score `ranker`, or one trained on `train_sources` by the shipped recipe, on `test`."""
    progress(f"indexing the collection in {test[0]}")
    collections = {test[0]: Collection.load(test[0], progress)}
    if ranker is None:
        ranker = train_on(train_sources or [], progress, collections)
    progress(f"ranking {test[0].name}:{test[1]} with {ranker.version}")
    split = load_checkthat_split(*test, progress)
    pairs, labels, keys = candidate_pairs(split, collections[test[0]], with_relevant=False)
    scores = ranker.score_pairs(pairs)
    by_query: dict[str, dict[str, float]] = {q: {} for q in split.queries}
    for (qid, doc), score in zip(keys, scores, strict=True):
        by_query[qid][doc] = float(score)
    rankings = {qid: ranked(docs) for qid, docs in by_query.items()}
    metrics = retrieval_metrics(rankings, split.relevant)
    return PairingEvaluation(metrics, ranker, [float(s) for s in scores], labels)
