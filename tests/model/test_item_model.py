"""Behaviour of the item classifier trained from the seed corpus, as the first start trains it."""

from dataclasses import replace

import numpy as np
import pytest

from classifiers import embedder, item_model
from classifiers.item_model import ItemClassifier
from classifiers.seed import load_seed
from classifiers.style import DENSE, ItemFeatures
from tracker.domain import TextForModel

RUMOUR = TextForModel(
    "Posts claim the army is secretly moving tanks to the northern border tonight",
    "Messages shared on Telegram say columns were seen near the crossing; nobody has confirmed it.",
    "social",
    "en",
)


@pytest.fixture(scope="module")
def model() -> ItemClassifier:
    return item_model.train(load_seed())


def _probabilities(model: ItemClassifier, item: TextForModel) -> dict[str, float]:
    return model.predict([item])[0].probabilities


def test_a_rumour_is_labelled_rumour(model: ItemClassifier) -> None:
    assert model.predict([RUMOUR])[0].label == "rumour"


@pytest.mark.parametrize(
    "variant",
    [
        replace(RUMOUR, title=RUMOUR.title + " https://t.co/AbC123xyz"),
        replace(RUMOUR, summary=RUMOUR.summary + " @border_watch_24 pic.twitter.com/x1Y2z3"),
        replace(RUMOUR, title=RUMOUR.title.upper()),
        replace(RUMOUR, title=RUMOUR.title.lower()),
    ],
    ids=["url", "handle", "upper-case", "lower-case"],
)
def test_urls_handles_and_casing_do_not_change_the_prediction(
    model: ItemClassifier, variant: TextForModel
) -> None:
    base = _probabilities(model, RUMOUR)
    changed = _probabilities(model, variant)
    assert model.predict([variant])[0].label == "rumour"
    assert all(abs(base[label] - changed[label]) < 0.02 for label in base), (base, changed)


@pytest.mark.parametrize(
    ("plain", "denied"),
    [
        (
            "The army is moving tanks to the northern border",
            "Ministry denies the army is moving tanks to the northern border: the claim is false",
        ),
        (
            "Armata mută tancuri spre granița de nord",
            "MApN dezminte: nu este adevărat că armata mută tancuri spre granița de nord",
        ),
    ],
    ids=["en", "ro"],
)
def test_a_denial_moves_an_item_towards_clarification(
    model: ItemClassifier, plain: str, denied: str
) -> None:
    language = "ro" if "Armata" in plain else "en"
    before = _probabilities(model, TextForModel(plain, "", "media", language))
    after = _probabilities(model, TextForModel(denied, "", "media", language))
    assert after["clarification"] > before["clarification"] + 0.2, (before, after)


def test_an_artifact_round_trips_to_the_same_predictions(model: ItemClassifier) -> None:
    loaded = ItemClassifier.from_bytes(model.to_bytes(), model.version, model.metadata)
    items = [RUMOUR, TextForModel("Ministry: the report is false", "", "official", "en")]
    assert loaded.predict(items) == model.predict(items)
    assert loaded.version == model.version


def test_metadata_records_the_data_and_the_validation_scores(model: ItemClassifier) -> None:
    meta = model.metadata
    assert len(meta["data_hash"]) == 64
    assert meta["examples"] == len(load_seed())
    assert 0 < meta["trained_on_examples"] < meta["examples"]
    assert set(meta["validation"]) == {"macro_f1", "rumour_f1"}
    assert meta["sklearn_version"]
    # The Models page draws this curve of the rumour label on the validation part.
    curve = meta["pr_curve"]
    assert len(curve["precision"]) == len(curve["recall"]) > 1 and curve["recall"][0] == 1.0


# The same two items in Russian: no word of them is in the seed corpus.
RUSSIAN_RUMOUR = TextForModel(
    "Пишут, что армия тайно перебрасывает танки к северной границе этой ночью",
    "В Telegram утверждают, что колонны видели у перехода; никто этого не подтвердил.",
    "social",
    "ru",
)
RUSSIAN_DENIAL = TextForModel(
    "Министерство обороны: сообщения о переброске танков к границе не соответствуют "
    "действительности",
    "Никаких передвижений войск не происходит, заявили в министерстве.",
    "social",
    "ru",
)


def test_what_an_item_says_counts_as_well_as_its_words(model: ItemClassifier) -> None:
    # One text, two vectors: the meaning of a rumour and the meaning of a denial.
    meant = [
        replace(RUSSIAN_RUMOUR, embedding=embedder.vector_of(RUSSIAN_RUMOUR)),
        replace(RUSSIAN_RUMOUR, embedding=embedder.vector_of(RUSSIAN_DENIAL)),
    ]
    rumour, denial = (p.probabilities for p in model.predict(meant))
    assert rumour["rumour"] > denial["rumour"]
    assert rumour["clarification"] < denial["clarification"]


def test_an_item_without_a_vector_is_embedded_to_be_classified(model: ItemClassifier) -> None:
    given = replace(RUSSIAN_RUMOUR, embedding=embedder.vector_of(RUSSIAN_RUMOUR))
    unknown = replace(RUSSIAN_RUMOUR, embedding=embedder.UNKNOWN)
    assert model.predict([unknown]) == model.predict([given]) == model.predict([RUSSIAN_RUMOUR])


def _features(documents: list[str]) -> ItemFeatures:
    return ItemFeatures().fit(documents)


def test_a_batch_has_the_features_its_items_have_one_by_one() -> None:
    documents = [RUMOUR.title, "Ministry: the report is false", "", "Sources say? Yes!"]
    features = _features(documents)
    batch = features.transform(documents).toarray()
    alone = np.vstack([features.transform([d]).toarray() for d in documents])
    assert np.allclose(batch, alone)


def test_links_handles_and_casing_leave_the_features_as_they_are() -> None:
    plain = "Sources say the army is moving tanks"
    noisy = "SOURCES say the Army is moving tanks https://t.co/x1 @watcher pic.twitter.com/a"
    features = _features([plain])
    assert np.array_equal(
        features.transform([plain]).toarray(), features.transform([noisy]).toarray()
    )


@pytest.mark.parametrize(
    ("text", "family", "count"),
    [
        ("Sources say the claims are not true", "cue_denial", 1),
        ("Sources say the claims are not true", "cue_attribution", 2),  # "sources say", "claims"
        ("MApN dezminte: nu este adevărat", "cue_denial", 2),  # a stem, and a phrase
        ("Міністерство спростовує фейк", "cue_denial", 2),
        ("Nobody said true", "cue_denial", 0),  # "not true" needs its words in a row
    ],
)
def test_cue_phrases_and_stems_are_counted(text: str, family: str, count: int) -> None:
    row = _features([text]).transform([text]).toarray()[0]
    assert np.expm1(row[-len(DENSE) + DENSE.index(family)]) == pytest.approx(count)
