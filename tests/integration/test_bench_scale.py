"""The scale-out benchmark on a tiny corpus: real beat and Celery workers on their queues, every
item through fetch, classify and pair; its figures' shape, never its speed."""

import os
from typing import Any

import pytest

from tests.conftest import Endpoints, run_tracker
from tracker.bench.scale import bench

# A benchmark-style run: CI's first pass runs it, the external-services pass does not.
pytestmark = pytest.mark.slow

FEEDS = 20


@pytest.fixture(scope="module")
def figures(session_db_url: str, services: Endpoints) -> dict[str, Any]:
    # The benchmark makes (and drops) a database of its own on the same server.
    return bench(session_db_url, services.broker_url, FEEDS, [1, 2], lambda _line: None)


def test_every_item_is_stored_classified_and_paired_in_each_run(
    figures: dict[str, Any],
) -> None:
    assert figures["items"] == FEEDS * figures["items_per_feed"]
    assert [r["workers_per_queue"] for r in figures["runs"]] == [1, 2]
    for run in figures["runs"]:
        assert run["all_processed"] is True
        assert run["stored"]["items"] == figures["items"]
        assert run["stored"]["classifications"] == figures["items"]
        assert run["tasks_succeeded"] == {"stored": FEEDS, "classified": FEEDS, "paired": FEEDS}


def test_figures_report_rates_scaling_memory_and_the_machine(figures: dict[str, Any]) -> None:
    assert figures["machine_cores"] == os.cpu_count()
    assert str(os.cpu_count()) in figures["cores_note"]
    first, second = figures["runs"]
    assert first["scaling_vs_first"] == 1.0
    assert second["scaling_vs_first"] == round(second["items_per_s"] / first["items_per_s"], 3)
    for run in (first, second):
        assert run["items_per_s"] > 0 and run["feeds_per_s"] > 0
        assert set(run["stage_items_per_s"]) == {"stored", "classified", "paired"}
        # Two workers per queue: two threads-pool processes, two prefork parents and children.
        assert run["peak_rss_mb"]["processes"] == 3 * run["workers_per_queue"]
        assert run["peak_rss_mb"]["max_process"] > 0
        assert set(run["load_average_1m"]) == {"start", "end"}


def test_a_bad_worker_list_is_refused_with_a_clear_error() -> None:
    result = run_tracker("bench", "scale", "--workers", "1,two", env=dict(os.environ))
    assert result.returncode == 1
    assert "--workers takes whole numbers separated by commas" in result.stderr
