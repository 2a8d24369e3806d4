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


def _texts() -> list[str]:
    from classifiers.seed import load_seed_pairs
    from classifiers.text_facts import pair_text

    pairs, _ = load_seed_pairs()
    found = {pair_text(t) for p in pairs for t in (p.rumour, p.clarification)}
    return [*sorted(found), "", "a", "x  yz\tabcd", "Apa și podul; dam  power cut, Cod Roșu!"]


def test_the_fast_concept_lookup_finds_what_the_lexicon_scan_finds() -> None:
    from classifiers.text import concepts, fold
    from classifiers.text_facts import folded_concepts

    texts = _texts()
    assert sum(bool(concepts(t)) for t in texts) > 100
    assert [folded_concepts(fold(t)) for t in texts] == [concepts(t) for t in texts]


def test_character_counts_hold_the_same_n_grams_as_char_wb() -> None:
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    from classifiers.hashing import char_counts
    from classifiers.text import fold

    texts = _texts()
    reference = CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), preprocessor=fold)
    expected = np.asarray(reference.fit_transform(texts).sum(axis=1)).ravel()
    counts = char_counts([fold(t) for t in texts])
    assert np.array_equal(np.asarray(counts.sum(axis=1)).ravel(), expected)
    # Hashing n-grams of one text into 2**18 buckets collides rarely.
    distinct = (reference.transform(texts[:50]) > 0).sum()
    assert counts[:50].nnz >= 0.99 * distinct
