"""Context from similar earlier items: a text saying what earlier texts said is probably what
they were.

Rumours come in waves: many outlets and accounts repeat one unverified claim within hours, and
the items of one wave share its words. The item model judges each text alone, by how it is
written; here each new item's probabilities move towards those of the earlier items most like
it, already classified, so a wave is judged together. On PHEME leave-one-event-out this lifts
rumour-class F1 from 0.600 to 0.663 and macro-F1 from 0.630 to 0.677 (`tracker eval rumour`,
docs/models.md).

Earlier items bring the probabilities they were stored with, themselves in context: the
context of an item reaches back through the items it resembles. Similarity is the cosine of
sublinear TF-IDF over content words, the IDF taken over the items compared (the new ones and
those found for them): words every related item shares (the event's name) weigh little.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from classifiers.text import content_words, strip_links
from tracker.domain import LABELS, Prediction, TextForModel

# Chosen on the PHEME events of ../shared/data (docs/models.md's table of neighbouring values):
# the share of an item's probabilities taken from its neighbours, how many neighbours at most,
# and how alike a neighbour must be.
WEIGHT = 0.7
NEIGHBOURS = 20
MIN_SIMILARITY = 0.2
# Neighbours are at most this much older: a wave of repeats lasts hours to days.
WINDOW = timedelta(days=2)


@dataclass(frozen=True)
class Earlier:
    """An item classified before, with the probabilities stored for it."""

    text: TextForModel
    probabilities: dict[str, float]


def _words(text: TextForModel) -> list[str]:
    return content_words(strip_links(f"{text.title} {text.summary}"))


def with_context(
    texts: Sequence[TextForModel], predictions: Sequence[Prediction], earlier: Sequence[Earlier]
) -> list[Prediction]:
    """The item model's predictions for `texts`, each blended with its neighbours among
    `earlier` and among the texts before it (by `seen_at`, then by position)."""
    if not texts:
        return []
    pool = [*(e.text for e in earlier), *texts]
    known = len(earlier)
    probabilities = np.array(
        [[e.probabilities.get(label, 0.0) for label in LABELS] for e in earlier]
        + [[p.probabilities.get(label, 0.0) for label in LABELS] for p in predictions],
        dtype=np.float64,
    ).reshape(len(pool), len(LABELS))
    similarity = _similarity(pool, known)
    seen = np.array([t.seen_at.timestamp() if t.seen_at else np.nan for t in pool])
    order = sorted(
        range(len(texts)), key=lambda i: (np.nan_to_num(seen[known + i], nan=-np.inf), i)
    )
    done = np.zeros(len(pool), dtype=bool)
    done[:known] = True
    window = WINDOW.total_seconds()
    for i in order:
        row = known + i
        alike = similarity[i].copy()
        alike[~done] = -1.0
        if not np.isnan(seen[row]):  # items without a time (none from feeds) see every other
            gap = seen[row] - seen
            alike[(gap < 0) | (gap > window)] = -1.0
        nearest = np.argsort(-alike, kind="stable")[:NEIGHBOURS]
        nearest = nearest[alike[nearest] >= MIN_SIMILARITY]
        if len(nearest):
            probabilities[row] = _blend(probabilities[row], alike[nearest], probabilities[nearest])
        done[row] = True
    return [_prediction(probabilities[known + i]) for i in range(len(texts))]


def _blend(own: np.ndarray, weights: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Move the split between rumour and other towards the neighbours'; the item's own
    clarification probability stays. Whether a text denies or corrects is in its own words
    (a ministry's denial shares the words of the rumours it answers), whether it repeats an
    unverified claim or reports plain news is what the wave tells."""
    rumour, other = LABELS.index("rumour"), LABELS.index("other")
    undecided = neighbours[:, rumour] + neighbours[:, other]
    mass = weights @ undecided
    rest = own[rumour] + own[other]
    if mass <= 0 or rest <= 0:
        return own
    share = (1 - WEIGHT) * own[rumour] / rest + WEIGHT * (weights @ neighbours[:, rumour]) / mass
    blended = own.copy()
    blended[rumour], blended[other] = rest * share, rest * (1 - share)
    return blended


def _similarity(pool: Sequence[TextForModel], known: int) -> np.ndarray:
    """Cosine of each new text (after the first `known`) with every text of the pool."""
    words = [_words(t) for t in pool]
    if not any(words):
        return np.zeros((len(pool) - known, len(pool)))
    vectors = TfidfVectorizer(analyzer=lambda w: w, sublinear_tf=True).fit_transform(words)
    return np.asarray((vectors[known:] @ vectors.T).todense())


def _prediction(row: np.ndarray) -> Prediction:
    best = int(row.argmax())
    return Prediction(
        label=LABELS[best],
        probability=round(float(row[best]), 4),
        probabilities={label: round(float(v), 4) for label, v in zip(LABELS, row, strict=True)},
    )
