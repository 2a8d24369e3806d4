import pytest

from classifiers.evaluate import average_precision, ranked, retrieval_metrics


def test_ties_are_broken_by_document_id_descending_as_trec_eval_does() -> None:
    assert ranked({"a": 0.5, "c": 0.5, "b": 0.9}) == ["b", "c", "a"]


def test_average_precision_divides_by_every_relevant_document_not_only_those_found() -> None:
    # Relevant at ranks 1 and 3, a third relevant never retrieved: (1/1 + 2/3) / 3.
    assert average_precision(["x", "n1", "y", "n2"], {"x", "y", "z"}, 5) == pytest.approx(
        (1 + 2 / 3) / 3
    )
    assert average_precision(["n1", "x"], {"x"}, 1) == 0.0


def test_retrieval_metrics_average_over_queries_with_relevant_documents() -> None:
    rankings = {"q1": ["a", "b"], "q2": ["c", "d"], "q3": ["e"]}
    relevant = {"q1": {"a"}, "q2": {"d"}}
    metrics = retrieval_metrics(rankings, relevant)
    assert metrics == {"map@1": 0.5, "map@5": 0.75, "recall@5": 1.0, "queries": 2}
