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
"""

import copy
from datetime import UTC, datetime

import pytest

from classifiers import bundle, item_model
from classifiers.pair_model import MEANING, PairExample, PairFeatures, feature_names
from tracker.domain import TextForModel

TOLERANCE = 1e-9

RUMOUR = TextForModel(
    "Sources say Romanian F-16s fly secret missions over Ukraine",
    "A video circulating online allegedly shows jets crossing the border.",
    feed_kind="social",
    language="en",
    seen_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
    author="Ion Popescu",
)
CLARIFICATION = TextForModel(
    "Ministry of Defence: reports of F-16s flying secret missions over Ukraine are false",
    "The aircraft flew routine NATO air-policing patrols inside national airspace. "
    "Ion Popescu's post was fake.",
    feed_kind="official",
    language="en",
    seen_at=datetime(2024, 3, 3, 9, 0, tzinfo=UTC),
)
OLD_DEBUNK = TextForModel(
    "Fact check: no, the water in Bucharest is not poisoned",
    "Claims about poisoned tap water, shared 2,000 times, are false, says Apa Nova.",
    feed_kind="factcheck",
    language="en",
    seen_at=datetime(2023, 1, 10, tzinfo=UTC),
)
UNRELATED = TextForModel(
    "Local team wins the regional football cup",
    "Fans celebrated in the main square until late evening. https://example.com/x #cup",
    feed_kind="news",
    language="en",
)
CYRILLIC = TextForModel(
    "Міноборони спростовує чутки про таємні польоти F-16",
    "Повідомлення про таємні місії над Україною не відповідають дійсності.",
    feed_kind="official",
    language="uk",
    seen_at=datetime(2024, 3, 2, tzinfo=UTC),
)
WATER = TextForModel(
    "Bucharest tap water poisoned, residents warned",
    "Messages on WhatsApp say the water is poisoned; do not drink it.",
    feed_kind="social",
    language="en",
    seen_at=datetime(2024, 3, 5, tzinfo=UTC),
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
    0.9961235870687112,
    0.0004501419285273485,
    0.00016695122507797216,
    0.17736286789741587,
    0.9502334576208951,
    0.0005232146902292427,
    2.589380286230557e-05,
]
# The same pairs read as a model fitted before CHAR_HASHING (no `char_hashing_`) reads them:
# scikit-learn's char_wb n-grams through the FeatureHasher.
LEGACY_CHAR_SCORES = [
    0.9961690428011164,
    0.0004741694704134268,
    0.00017310510915483936,
    0.16272729062613714,
    0.950497476929789,
    0.000507239624432979,
    4.532277777279197e-05,
]
SCORE_MANY = [
    (
        0.9961,
        (
            *("16", "16s", "missions", "secret", "ukraine"),
            *("~aircraft", "~mission", "~secret", "~ukraine"),
        ),
    ),
    (0.0005, ()),
    (0.0002, ()),
    (0.1774, ("16", "~mission", "~secret")),
]
ITEMS = [RUMOUR, CLARIFICATION, OLD_DEBUNK, UNRELATED, CYRILLIC, WATER]
ITEM_CLASSES = ["clarification", "other", "rumour"]
ITEM_PROBABILITIES = [
    [4.227090645399006e-06, 0.00010330342420135634, 0.9998924694851533],
    [0.9999458822116966, 1.684767686199438e-05, 3.7270111441332725e-05],
    [0.9995633567689333, 3.842226760241618e-06, 0.00043280100430643094],
    [0.000863648936517185, 0.7568736349927786, 0.2422627160707042],
    [0.19604273688458515, 0.5314006725065212, 0.2725565906088936],
    [0.05794037839393718, 0.462006671964547, 0.4800529496415157],
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
