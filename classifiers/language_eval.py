"""Rumour detection across languages: the item classifier on the same claims written in several
languages, as the workers classify them (each text's language detected, then the context of the
texts before it).

The claims are VoxCheck quotes (../shared/data/voxcheck_xling): what pro-Kremlin outlets wrote,
each repeating a known fake, translated into English, Russian and Ukrainian. The collection has
no claim that is not a rumour, so it measures transfer, not precision: a model whose knowledge
carries across languages labels a fake's quotes alike in all three. Per test set: the share
labelled rumour, the mean rumour probability, and how well the per-fake mean probabilities
agree with those of the first set (Spearman's rank correlation over the fakes both hold).
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from classifiers import context, language
from classifiers.datasets import load_checkthat_split
from classifiers.item_model import ItemClassifier
from tracker.domain import TextForModel

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SetScores:
    metrics: dict[str, object]
    by_fake: dict[str, float]  # the mean rumour probability of each fake's quotes


def evaluate_languages(
    tests: Sequence[tuple[Path, str]], model: ItemClassifier, progress: Progress
) -> dict[str, object]:
    """Metrics per test set (DIR:SPLIT of the CheckThat! layout, whose queries are claims and
    whose qrels name the fake each repeats), keyed by DIR:SPLIT."""
    out: dict[str, object] = {}
    reference: dict[str, float] | None = None
    for directory, split in tests:
        scores = _score(directory, split, model, progress)
        name = f"{directory.name}:{split}"
        if reference is None:
            reference = scores.by_fake
        else:
            scores.metrics["fake_agreement"] = _agreement(reference, scores.by_fake)
        progress(f"{name}: scored {scores.metrics['n']} claims")
        out[name] = scores.metrics
    return out


def _score(directory: Path, split: str, model: ItemClassifier, progress: Progress) -> SetScores:
    data = load_checkthat_split(directory, split, progress)
    ids = list(data.queries)
    texts = [_detected(data.queries[q]) for q in ids]
    own = model.predict(texts)
    predictions = context.with_context(texts, own, [])
    rumour = np.array([p.probabilities.get("rumour", 0.0) for p in predictions])
    fakes: dict[str, list[float]] = {}
    for qid, probability in zip(ids, rumour, strict=True):
        for fake in data.relevant.get(qid, ()):
            fakes.setdefault(fake, []).append(float(probability))
    languages = Counter(t.language for t in texts)
    metrics: dict[str, object] = {
        "n": len(texts),
        "language": languages.most_common(1)[0][0] if texts else None,
        "rumour_share": round(float(np.mean([p.label == "rumour" for p in predictions])), 4),
        "rumour_share_without_context": round(
            float(np.mean([p.label == "rumour" for p in own])), 4
        ),
        "mean_rumour_probability": round(float(rumour.mean()), 4),
    }
    return SetScores(metrics, {f: float(np.mean(v)) for f, v in fakes.items()})


def _detected(text: TextForModel) -> TextForModel:
    """The text with the language a worker would detect (datasets declare English)."""
    found = language.detect(language.item_text(text.title, text.summary), text.language)
    return replace(text, language=found)


def _agreement(reference: dict[str, float], other: dict[str, float]) -> float | None:
    shared = sorted(set(reference) & set(other))
    if len(shared) < 3:
        return None
    rho = spearmanr([reference[f] for f in shared], [other[f] for f in shared]).statistic
    return round(float(rho), 4)
