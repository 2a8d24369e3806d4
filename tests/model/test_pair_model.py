"""Behaviour of the pair re-ranker trained from the seed pairs, as the first start trains it:
an F-16-style rumour meets its ministry clarification in English, in Romanian and across the
two, among clarifications of other events."""

from datetime import UTC, datetime, timedelta

import pytest

from classifiers import pair_model
from classifiers.pair_model import PairRanker
from classifiers.seed import load_seed_pairs
from tracker.domain import TextForModel

AT = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def _item(title: str, summary: str, kind: str, language: str, hours: int = 0) -> TextForModel:
    return TextForModel(title, summary, kind, language, AT + timedelta(hours=hours))


RUMOUR_EN = _item(
    "Sources say Romanian F-35s fly secret night patrols over Moldova",
    "Unverified posts claim two jets from Câmpia Turzii crossed the Prut three nights running.",
    "social",
    "en",
)
RUMOUR_RO = _item(
    "Surse: avioane F-35 românești ar face patrule secrete de noapte deasupra Moldovei",
    "Postări neverificate susțin că două avioane de la Câmpia Turzii au trecut Prutul.",
    "social",
    "ro",
)
CLARIFICATION_EN = _item(
    "Ministry of Defence: no Romanian F-35s have flown over Moldova",
    "The ministry says the claims about secret night patrols are false; the jets stayed at "
    "Câmpia Turzii for scheduled maintenance.",
    "official",
    "en",
    hours=20,
)
CLARIFICATION_RO = _item(
    "MApN: niciun avion F-35 românesc nu a zburat deasupra Moldovei",
    "Ministerul Apărării precizează că informațiile despre patrule secrete de noapte sunt false; "
    "avioanele au rămas la Câmpia Turzii pentru mentenanță.",
    "official",
    "ro",
    hours=20,
)
OTHER_CLARIFICATIONS = [
    _item(
        "Health authority: the measles vaccine batch in Iași is safe",
        "Claims that a contaminated batch reached clinics are false, the authority said.",
        "official",
        "en",
        hours=5,
    ),
    _item(
        "Biroul Electoral: buletinele de vot din Vaslui nu au fost tipărite greșit",
        "Informațiile apărute pe rețelele sociale sunt false, precizează BEC.",
        "official",
        "ro",
        hours=8,
    ),
    _item(
        "Fact check: the video of a flooded metro station is from 2019",
        "The clip circulating this week shows an old flood in another city.",
        "factcheck",
        "en",
        hours=30,
    ),
    _item(
        "ISU: nu există risc de rupere a barajului de pe Siret",
        "Inspectoratul pentru Situații de Urgență dezminte zvonurile despre baraj.",
        "official",
        "ro",
        hours=12,
    ),
]


@pytest.fixture(scope="module")
def ranker() -> PairRanker:
    return pair_model.train(*load_seed_pairs(), {})


@pytest.mark.parametrize(
    ("rumour", "clarification"),
    [
        (RUMOUR_EN, CLARIFICATION_EN),
        (RUMOUR_RO, CLARIFICATION_RO),
        (RUMOUR_EN, CLARIFICATION_RO),
        (RUMOUR_RO, CLARIFICATION_EN),
    ],
    ids=["en-en", "ro-ro", "en-ro", "ro-en"],
)
def test_a_rumour_ranks_its_clarification_first_and_above_the_suggest_threshold(
    ranker: PairRanker, rumour: TextForModel, clarification: TextForModel
) -> None:
    candidates = [clarification, *OTHER_CLARIFICATIONS]
    scores = ranker.score_many(rumour, candidates, query_is_rumour=True)
    best = max(range(len(candidates)), key=lambda i: scores[i].score)
    assert best == 0, [(c.title, s.score) for c, s in zip(candidates, scores, strict=True)]
    assert scores[0].score >= 0.5, scores[0]
    assert all(s.score < 0.5 for s in scores[1:]), scores


def test_a_clarification_finds_its_rumour_from_the_other_side(ranker: PairRanker) -> None:
    unrelated = _item("Bread prices double overnight, posts say", "", "social", "en", -3)
    scores = ranker.score_many(CLARIFICATION_EN, [unrelated, RUMOUR_EN], query_is_rumour=False)
    assert scores[1].score > scores[0].score


def test_the_explanation_names_shared_terms_and_concepts(ranker: PairRanker) -> None:
    [score] = ranker.score_many(RUMOUR_EN, [CLARIFICATION_RO], query_is_rumour=True)
    assert "35" in score.shared_terms
    assert "~secret" in score.shared_terms


def test_an_artifact_round_trips_to_the_same_scores(ranker: PairRanker) -> None:
    loaded = PairRanker.from_bytes(ranker.to_bytes(), ranker.version, ranker.metadata)
    candidates = [CLARIFICATION_EN, *OTHER_CLARIFICATIONS]
    assert loaded.score_many(RUMOUR_EN, candidates, True) == ranker.score_many(
        RUMOUR_EN, candidates, True
    )
    assert ranker.metadata["validation"]["queries"] > 0
    curve = ranker.metadata["pr_curve"]
    assert len(curve["precision"]) == len(curve["recall"]) > 1 and curve["recall"][0] == 1.0
