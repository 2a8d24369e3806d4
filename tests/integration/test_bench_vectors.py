"""The vector search benchmark end to end on a small load: both storage paths measured, figures
present and sane, recall as the paths promise; never timed."""

from typing import Any

import pytest

from tracker.bench.vectors import bench

# A benchmark-style run: CI's first pass runs it, the external-services pass does not.
pytestmark = pytest.mark.slow

PATH_KEYS = {
    "column_type",
    "items",
    "load_seconds",
    "table_mb",
    "indexes_mb",
    "total_mb",
    "clarification_search",
    "rumour_search",
}


@pytest.fixture(scope="module")
def figures(session_db_url: str) -> dict[str, Any]:
    # Scratch databases of its own on the test server (and on an embedded pgserver of its own
    # when that server has no pgvector), dropped afterwards.
    return bench(session_db_url, n_items=2_000, n_queries=20, embed_texts=10)


def _searches(path: dict[str, Any]) -> list[dict[str, Any]]:
    return [path["clarification_search"], path["rumour_search"]]


def test_the_real_array_path_finds_exactly_the_nearest_items(figures: dict[str, Any]) -> None:
    path = figures["real_array"]
    assert set(path) >= PATH_KEYS and path["column_type"] == "real[]"
    assert path["items"] == 2_000 and not path["capped"]
    for search in _searches(path):
        assert search["recall_at_20"] == 1.0 and search["mean_returned"] == 20
        latency = search["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]


def test_the_pgvector_path_builds_hnsw_indexes_and_finds_most_of_the_nearest(
    figures: dict[str, Any],
) -> None:
    path = figures["pgvector"]
    if "skipped" in path:
        pytest.skip(f"the pgvector path did not run: {path['skipped']}")
    assert set(path) >= PATH_KEYS and path["column_type"] == "vector"
    # One build time per HNSW index, each a real duration, and their sum as the total.
    build = dict(path["hnsw_build_seconds"])
    total = build.pop("total")
    assert build and all(0 <= seconds < 600 for seconds in build.values()), build
    assert total == round(sum(build.values()), 1)
    assert path["hnsw_indexes_mb"] > 0
    for search in _searches(path):
        assert search["recall_at_20"] >= 0.8
        assert search["latency_ms"]["p95"] > 0


def test_a_capped_real_array_path_says_so(session_db_url: str) -> None:
    capped = bench(session_db_url, n_items=600, n_queries=5, exact_items=300, embed_texts=2)
    assert capped["items"] == 600 and capped["pgvector"].get("items", 600) == 600
    assert capped["real_array"]["capped"] and capped["real_array"]["items"] == 300


def test_the_embedder_is_timed_per_item_and_in_batches(figures: dict[str, Any]) -> None:
    speed = figures["embedder"]
    assert speed["texts"] == 10 and speed["mean_chars"] > 20
    assert 0 < speed["single_item_ms"]["p50"] <= speed["single_item_ms"]["p95"]
    assert speed["items_per_s_batches_of_32"] > 0
