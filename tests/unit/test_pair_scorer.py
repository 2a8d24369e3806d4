from classifiers.pair_scorer import LexicalPairScorer, query_terms
from tracker.domain import TextForModel

RUMOUR = TextForModel(
    "Sources say Romanian F-16s fly secret missions over Ukraine",
    "A video circulating online allegedly shows jets crossing the border.",
)
CLARIFICATION = TextForModel(
    "Ministry of Defence: reports of F-16s flying secret missions over Ukraine are false",
    "The aircraft flew routine NATO air-policing patrols inside national airspace.",
)
UNRELATED = TextForModel(
    "Local team wins the regional football cup",
    "Fans celebrated in the main square until late evening.",
)


def test_the_clarification_of_a_rumour_scores_above_an_unrelated_item() -> None:
    clar, other = LexicalPairScorer().score_many(RUMOUR, [CLARIFICATION, UNRELATED])
    assert clar.score > 0.3
    assert other.score < 0.15
    assert {"missions", "secret", "ukraine"} <= set(clar.shared_terms)


def test_scores_stay_between_zero_and_one() -> None:
    scores = LexicalPairScorer().score_many(RUMOUR, [RUMOUR, UNRELATED])
    assert all(0.0 <= s.score <= 1.0 for s in scores)
    assert scores[0].score == 1.0


def test_query_terms_skip_stop_words_and_keep_diacritics() -> None:
    terms = query_terms(TextForModel("MApN dezminte informațiile despre F-16", ""))
    assert "informațiile" in terms
    assert "despre" not in terms
    assert "16" in terms
