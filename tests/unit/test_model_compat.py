"""Models saved before a refactoring still load and score identically.

Stored models (the shipped bundle in classifiers/bundle/, and every model in users' databases)
name their classes by import path (classifiers/artifacts.py, STEPS) and keep the attributes
those classes set when fitted. Moving PairFeatures, WordsAndMeaning, CalibratedLogistic or
ItemFeatures, or renaming or re-reading a fitted attribute, breaks them.

The expected scores below were recorded from the shipped bundle (pair.skops and item.skops)
BEFORE classifiers/pair_model.py was split into hashing.py, tfidf.py, text_facts.py and
vector_cache.py, so a move that breaks loading or changes scoring fails here. Should the
bundle itself be rebuilt (`tracker models build-bundle`), record them again from the new one:
the pair scores were last recorded from the bundle that added the script features (other_script).
All were recorded again on 2026-12-08, unchanged code and bundle, with each text given a fixed
vector (`meaning`) in place of the encoder's, which differs from one machine to another.
"""

import copy
from datetime import UTC, datetime

import numpy as np
import pytest

from classifiers import bundle, embedder, item_model
from classifiers.pair_model import MEANING, PairExample, PairFeatures, feature_names
from tracker.domain import TextForModel

TOLERANCE = 1e-9


def meaning(*parts: tuple[int, float]) -> np.ndarray:
    """A unit vector of seeded random directions, weighted: the same on every machine. The
    encoder's own vectors differ in their last digits from one CPU to another (its maths
    library), and the scores below moved by up to 0.005 between two machines."""
    v = sum(w * np.random.default_rng(seed).standard_normal(embedder.DIM) for seed, w in parts)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


RUMOUR = TextForModel(
    "Sources say Romanian F-16s fly secret missions over Ukraine",
    "A video circulating online allegedly shows jets crossing the border.",
    feed_kind="social",
    language="en",
    seen_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
    author="Ion Popescu",
    embedding=meaning((1, 1.0)),
)
CLARIFICATION = TextForModel(
    "Ministry of Defence: reports of F-16s flying secret missions over Ukraine are false",
    "The aircraft flew routine NATO air-policing patrols inside national airspace. "
    "Ion Popescu's post was fake.",
    feed_kind="official",
    language="en",
    seen_at=datetime(2024, 3, 3, 9, 0, tzinfo=UTC),
    embedding=meaning((1, 1.0), (2, 0.6)),
)
OLD_DEBUNK = TextForModel(
    "Fact check: no, the water in Bucharest is not poisoned",
    "Claims about poisoned tap water, shared 2,000 times, are false, says Apa Nova.",
    feed_kind="factcheck",
    language="en",
    seen_at=datetime(2023, 1, 10, tzinfo=UTC),
    embedding=meaning((3, 1.0)),
)
UNRELATED = TextForModel(
    "Local team wins the regional football cup",
    "Fans celebrated in the main square until late evening. https://example.com/x #cup",
    feed_kind="news",
    language="en",
    embedding=meaning((4, 1.0)),
)
CYRILLIC = TextForModel(
    "Міноборони спростовує чутки про таємні польоти F-16",
    "Повідомлення про таємні місії над Україною не відповідають дійсності.",
    feed_kind="official",
    language="uk",
    seen_at=datetime(2024, 3, 2, tzinfo=UTC),
    embedding=meaning((1, 1.0), (5, 0.7)),
)
WATER = TextForModel(
    "Bucharest tap water poisoned, residents warned",
    "Messages on WhatsApp say the water is poisoned; do not drink it.",
    feed_kind="social",
    language="en",
    seen_at=datetime(2024, 3, 5, tzinfo=UTC),
    embedding=meaning((3, 1.0), (6, 0.6)),
)

PAIRS = [
    PairExample(RUMOUR, CLARIFICATION, 0),
    PairExample(RUMOUR, OLD_DEBUNK, 0),
    PairExample(RUMOUR, UNRELATED, 0),
    PairExample(RUMOUR, CYRILLIC, 0),
    PairExample(WATER, OLD_DEBUNK, 1, False),
    PairExample(RUMOUR, OLD_DEBUNK, 1, False),
    PairExample(UNRELATED, OLD_DEBUNK, 1, False),
]
PAIR_SCORES = [
    0.8388909123033041,
    2.983461384928554e-11,
    2.165101240223307e-11,
    0.005442257208480713,
    0.28530649158930493,
    2.6826244223338787e-11,
    3.262077722185177e-11,
]
# The same pairs read as a model fitted before CHAR_HASHING (no `char_hashing_`) reads them:
# scikit-learn's char_wb n-grams through the FeatureHasher.
LEGACY_CHAR_SCORES = [
    0.840484865336828,
    3.1427872462258215e-11,
    2.2449214922433745e-11,
    0.0049085263818998285,
    0.28644914526556753,
    2.600675556427456e-11,
    5.709833240695467e-11,
]
SCORE_MANY = [
    (
        0.8389,
        (
            *("16", "16s", "missions", "secret", "ukraine"),
            *("~aircraft", "~mission", "~secret", "~ukraine"),
        ),
    ),
    (0.0, ()),
    (0.0, ()),
    (0.0054, ("16", "~mission", "~secret")),
]
ITEMS = [RUMOUR, CLARIFICATION, OLD_DEBUNK, UNRELATED, CYRILLIC, WATER]
ITEM_CLASSES = ["clarification", "other", "rumour"]
ITEM_PROBABILITIES = [
    [2.1732373662657486e-06, 3.802166060393536e-05, 0.9999598051020299],
    [0.9999331468956284, 4.456916013933465e-05, 2.2283944232339676e-05],
    [0.99390204303481, 1.4459004485372895e-05, 0.0060834979607047165],
    [0.0015326552292327185, 0.5233905626499326, 0.4750767821208346],
    [0.17737184877399384, 0.5086841735174357, 0.3139439777085705],
    [0.022422333530384257, 0.2579731481334269, 0.7196045183361889],
]


@pytest.fixture(scope="module")
def shipped() -> bundle.Bundle:
    # bundle.load goes through artifacts.load: the steps' classes must be at their stored paths.
    return bundle.load()


def test_the_shipped_pair_model_scores_as_before_the_split(shipped: bundle.Bundle) -> None:
    found = [float(s) for s in shipped.pair.score_pairs(PAIRS)]
    assert found == pytest.approx(PAIR_SCORES, rel=0, abs=TOLERANCE)


def test_the_shipped_pair_model_scores_candidates_and_shared_terms_as_before(
    shipped: bundle.Bundle,
) -> None:
    found = shipped.pair.score_many(RUMOUR, [CLARIFICATION, OLD_DEBUNK, UNRELATED, CYRILLIC], True)
    assert [(s.score, s.shared_terms) for s in found] == SCORE_MANY


def test_a_pair_model_from_before_char_hashing_scores_as_before(shipped: bundle.Bundle) -> None:
    pipeline = copy.deepcopy(shipped.pair.pipeline)
    del pipeline.steps[0][1].char_hashing_
    found = [float(s) for s in pipeline.predict_proba(PAIRS)[:, 1]]
    assert found == pytest.approx(LEGACY_CHAR_SCORES, rel=0, abs=TOLERANCE)


def test_the_shipped_item_model_scores_as_before_the_split(shipped: bundle.Bundle) -> None:
    pipeline = shipped.item.pipeline
    assert [str(c) for c in pipeline.classes_] == ITEM_CLASSES
    found = pipeline.predict_proba(item_model.inputs(pipeline, ITEMS)).tolist()
    for row, expected in zip(found, ITEM_PROBABILITIES, strict=True):
        assert row == pytest.approx(expected, rel=0, abs=TOLERANCE)


def test_pairs_in_two_scripts_get_the_meaning_scores_again_and_older_models_do_not() -> None:
    names = feature_names()
    features = PairFeatures().fit(PAIRS)
    rows = features.transform(PAIRS)
    assert rows.shape == (len(PAIRS), len(names))
    other_script = rows[:, names.index("other_script")]
    # Only the Ukrainian statement is in Cyrillic letters.
    assert other_script.tolist() == [0, 0, 0, 1, 0, 0, 0]
    again = rows[:, [names.index(f"{n}_other_script") for n in MEANING]]
    alone = rows[:, [names.index(n) for n in MEANING]]
    assert (again[3] == alone[3]).all() and alone[3].any()
    assert not again[[0, 1, 2, 4, 5, 6]].any()
    # A model fitted before these features reads the same pairs as it was fitted to.
    del features.scripts_
    older = features.transform(PAIRS)
    assert (older == rows[:, : len(names) - 1 - len(MEANING)]).all()
