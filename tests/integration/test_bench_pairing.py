"""The pairing benchmark end to end on a tiny corpus: figures present and sane, never timed."""

from typing import Any

import pytest

from tracker.bench.pairing import bench

# A benchmark-style run: CI's first pass runs it, the external-services pass does not.
pytestmark = pytest.mark.slow


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
        # The stored rumours and clarifications carry vectors, as classification stores them.
        stored = run["stored_candidates"]
        assert 0 < stored["rows"] == stored["with_vector"]
        # Items with no pairing role (news that is no claim) are not paired.
        assert 0 < sum(run["pairing_roles"].values()) <= 20
        latency = run["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
        # Each role's own figures: the same items, split by what pairing did with them.
        by_role = run["latency_ms_by_role"]
        assert set(by_role) == set(run["pairing_roles"])
        assert max(role["max"] for role in by_role.values()) == latency["max"]
        assert run["retrieval_ms"]["p50"] > 0 and run["scoring_ms"]["p50"] > 0
    assert large["pairs_created"] > 0
    # Loaded claims were given what they would have been compared with, as paired claims keep.
    assert large["claims_remembered"] > 0
    assert figures["pairing_p95_ratio_n_to_n_over_10"] > 0


def test_memory_and_targets_are_reported(figures: dict[str, Any]) -> None:
    # A Python process that loaded the models: tens of megabytes at least, not gigabytes.
    assert 10 < figures["worker_peak_rss_mb"] < 4_000
    assert 10 < figures["bench_process_peak_rss_mb"] < 8_000
    targets = figures["targets"]
    large = figures["pairing"][-1]
    # Each target carries the figure it judges, its bound, and whether the figure meets it.
    expected = {
        "classification_items_per_s": (
            figures["classification"]["items_per_s_batches_of_100"],
            ">=",
            10_000,
        ),
        "pairing_p95_ms_at_2000": (large["latency_ms"]["p95"], "<=", 50),
        "pairing_p95_ratio_n_to_n_over_10": (
            figures["pairing_p95_ratio_n_to_n_over_10"],
            "<=",
            2,
        ),
        "worker_peak_rss_mb": (figures["worker_peak_rss_mb"], "<=", 500),
    }
    assert set(targets) == set(expected)
    for name, (value, sign, limit) in expected.items():
        assert value > 0 and targets[name]["value"] == value, name
        assert targets[name]["target"] == f"{sign} {limit}", name
        met = value >= limit if sign == ">=" else value <= limit
        assert targets[name]["met"] is met, name


def test_a_reused_database_is_restored_to_the_loaded_items_and_measured_at_n_only(
    session_db_url: str,
) -> None:
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"rt_bench_reuse_{uuid.uuid4().hex[:8]}"
    try:
        first = bench(session_db_url, n_items=600, new_items=10, classify_n=200, reuse=name)
        again = bench(session_db_url, n_items=600, new_items=10, classify_n=200, reuse=name)
        parts = urlsplit(session_db_url)
        url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM items").fetchone()
    finally:
        with psycopg.connect(session_db_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert len(first["pairing"]) == 2 and "reused" not in first["pairing"][-1]
    [run] = again["pairing"]
    # The new items of the first run were removed: the run met exactly the loaded items.
    assert run["reused"] and run["stored_items"] == 600 and run["new_items"] == 10
    # What the first run's claims kept was removed too: the same claims were searched again.
    assert run["claims_remembered"] == first["pairing"][-1]["claims_remembered"] > 0
    assert again["pairing_p95_ratio_n_to_n_over_10"] == 0.0
    assert row is not None and row[0] == 600 + 10 + 10  # loaded, warm-up, timed
