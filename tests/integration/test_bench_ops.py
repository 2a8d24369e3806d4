"""The backup, restore and retention benchmark end to end on tiny sizes: figures present and
sane, never timed."""

from typing import Any

import pytest

from tracker.bench.ops import ROUND, bench

# A benchmark-style run: CI's first pass runs it, the external-services pass does not.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def figures(session_db_url: str) -> dict[str, Any]:
    # The benchmark makes (and drops) databases of its own on the same server.
    return bench(session_db_url, n_items=2000, n_pairs=200, requests=20)


def test_backup_and_restore_are_timed_and_the_dump_measured(figures: dict[str, Any]) -> None:
    assert (figures["items"], figures["pairs"]) == (2000, 200)
    assert figures["backup_seconds"] > 0 and figures["restore_seconds"] > 0
    assert figures["dump_mb"] > 0


def test_about_half_the_items_expire_and_only_unkept_ones_go(figures: dict[str, Any]) -> None:
    assert 900 <= figures["expired_items"] <= 1100
    # Half the items are in stories and two kinds of feed of five are archived: some go, and
    # most expired ones stay.
    assert 0 < figures["deleted_items"] < figures["expired_items"] / 2


def test_the_queue_is_measured_during_the_pass_against_idle(figures: dict[str, Any]) -> None:
    for name in ("queue_page", "api_pairs"):
        measured = figures[name]
        assert measured["requests_during_prune"] >= ROUND
        idle, during = measured["idle_ms"], measured["during_prune_ms"]
        assert 0 < idle["p50"] <= idle["p95"] and 0 < during["p50"] <= during["p95"]
        ratio = figures["targets"][f"{name}_p95_during_prune_over_idle"]
        assert ratio["value"] == round(during["p95"] / idle["p95"], 2)
        assert ratio["target"] == "<= 1.5"
