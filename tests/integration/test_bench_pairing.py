"""The pairing benchmark end to end on a tiny corpus: figures present and sane, never timed."""

from typing import Any

import pytest

from tracker.bench.pairing import bench


@pytest.fixture(scope="module")
def figures(session_db_url: str) -> dict[str, Any]:
    # The benchmark makes (and drops) a database of its own on the same server.
    return bench(session_db_url, n_items=2_000, new_items=20, classify_n=500)


def test_classification_throughput_is_measured_in_small_batches_and_in_one(
    figures: dict[str, Any],
) -> None:
    rate = figures["classification"]
    assert rate["items"] == 500 and rate["model_version"].startswith("item-")
    assert rate["items_per_s_batches_of_100"] > 0 and rate["items_per_s_one_batch"] > 0


def test_pairing_latency_is_reported_at_a_tenth_and_at_the_full_size(
    figures: dict[str, Any],
) -> None:
    small, large = figures["pairing"]
    assert 200 <= small["stored_items"] < 2_000 <= large["stored_items"]
    for run in (small, large):
        assert run["new_items"] == 20
        assert sum(run["labelled"].values()) == 20
        latency = run["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
        assert run["retrieval_ms"]["p50"] > 0 and run["scoring_ms"]["p50"] > 0
    assert large["pairs_created"] > 0
    assert figures["pairing_p95_ratio_n_to_n_over_10"] > 0


def test_memory_and_targets_are_reported(figures: dict[str, Any]) -> None:
    assert 0 < figures["worker_peak_rss_mb"] < 100_000
    targets = figures["targets"]
    assert set(targets) == {
        "classification_items_per_s",
        "pairing_p95_ms_at_2000",
        "pairing_p95_ratio_n_to_n_over_10",
        "worker_peak_rss_mb",
    }
    assert all(isinstance(t["met"], bool) and t["target"] for t in targets.values())
