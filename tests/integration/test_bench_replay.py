"""`tracker bench replay` on a tiny CheckThat!-format split written here: invented tweets, the
fact-checks that answer them and a few that answer none, through real beat and Celery workers
fetching loopback feeds; the report's shape and sums, never its speed."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from classifiers import embedder
from tests.conftest import Endpoints, run_tracker
from tracker.bench.replay import load, task_errors

# A benchmark-style run: CI's first pass runs it, the external-services pass does not.
pytestmark = pytest.mark.slow

DISTRACTORS = 3
# (query id, tweet in the oEmbed form "text — Name (@handle) Month D, YYYY", its fact-checks)
QUERIES = [
    (
        "q1",
        "BREAKING: the city water supply has been poisoned, do not drink tap water tonight! "
        "\u2014 Local Alerts (@localalerts) March 3, 2021",
        ["vc-water"],
    ),
    (
        "q2",
        "Doctors confirm that eating raw garlic cures the flu in one day, share before they "
        "delete this \u2014 Health Tips (@healthtips) April 12, 2021",
        ["vc-garlic"],
    ),
    (
        "q3",
        "The bridge over the river collapsed this morning, hundreds missing, the government "
        "is hiding it \u2014 Citizen News (@citizennews) May 1, 2021",
        ["vc-bridge", "vc-bridge-2"],
    ),
    # No signature: the date falls back to a recent one.
    (
        "q4",
        "Vaccines contain microchips that track your location, the leaked memo shows",
        ["vc-chip"],
    ),
    (
        "q5",
        "Schools will stay closed all year, the minister secretly decided \u2014 Parent Voice "
        "(@parentvoice) June 9, 2021",
        ["vc-schools"],
    ),
]
VCLAIMS = [
    (
        "vc-water",
        "The city water supply was poisoned.",
        "Was the City Water Supply Poisoned?",
        "2 March 2021",
    ),
    (
        "vc-garlic",
        "Eating raw garlic cures the flu in a day.",
        "Does Raw Garlic Cure the Flu?",
        "10 April 2021",
    ),
    (
        "vc-bridge",
        "The river bridge collapsed leaving hundreds missing.",
        "Did the River Bridge Collapse?",
        "1 May 2021",
    ),
    (
        "vc-bridge-2",
        "Officials hid a bridge collapse.",
        "Is the Government Hiding a Bridge Collapse?",
        "",
    ),
    (
        "vc-chip",
        "Vaccines contain tracking microchips.",
        "Do Vaccines Contain Microchips?",
        "5 January 2021",
    ),
    (
        "vc-schools",
        "Schools will stay closed for the whole year.",
        "Will Schools Stay Closed All Year?",
        "8 June 2021",
    ),
    (
        "vc-moon",
        "The moon landing was filmed in a studio.",
        "Was the Moon Landing Faked?",
        "20 July 2019",
    ),
    (
        "vc-shark",
        "A shark swam down a flooded highway.",
        "Did a Shark Swim on a Flooded Highway?",
        "30 August 2017",
    ),
    (
        "vc-ceo",
        "A CEO gave every employee a million dollars.",
        "Did a CEO Give Staff a Million Each?",
        "3 March 2020",
    ),
    (
        "vc-cat",
        "A cat was elected mayor of a small town.",
        "Was a Cat Elected Mayor?",
        "11 November 2018",
    ),
    (
        "vc-coin",
        "A new coin is worth ten thousand dollars.",
        "Is This Coin Worth $10,000?",
        "14 February 2022",
    ),
]


def write_split(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"qid": q, "text": text}) for q, text, _gold in QUERIES]
    (directory / "queries.tiny.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    qrels = [f"{q}\t0\t{doc}\t1" for q, _text, gold in QUERIES for doc in gold]
    (directory / "qrels.tiny.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    vclaims = [
        json.dumps(
            {
                "vclaim_id": v,
                "vclaim": claim,
                "title": title,
                "subtitle": claim,
                "author": "A. Checker",
                "date": date,
            }
        )
        for v, claim, title, date in VCLAIMS
    ]
    (directory / "vclaims.collection.jsonl").write_text("\n".join(vclaims) + "\n", encoding="utf-8")


def replay(tmp_path: Path, services: Endpoints, session_db_url: str, dates: str) -> dict[str, Any]:
    write_split(tmp_path)
    env = {
        **os.environ,
        # The bench makes (and drops) a fresh database of its own on this server.
        "TRACKER_DATABASE_URL": session_db_url,
        "TRACKER_BROKER_URL": services.broker_url,
    }
    result = run_tracker(
        "bench",
        "replay",
        "--split",
        f"{tmp_path}:tiny",
        "--dates",
        dates,
        "--distractors",
        str(DISTRACTORS),
        "--timeout",
        # Above the sweeper's grace (120 s): a pair task that fails (two workers deadlocking)
        # has its items re-queued by the sweeper, and the run still settles.
        "240",
        "--json",
        env=env,
    )
    print(result.stderr[-3000:])
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture(scope="module")
def recent(
    tmp_path_factory: pytest.TempPathFactory, services: Endpoints, session_db_url: str
) -> dict[str, Any]:
    return replay(tmp_path_factory.mktemp("recent"), services, session_db_url, "recent")


def test_every_served_item_is_stored_classified_and_paired(recent: dict[str, Any]) -> None:
    assert recent["settled"] is True and recent["timed_out"] is False
    assert recent["seconds_to_settle"] > 0
    claims, checks = recent["claims"], recent["factchecks"]
    assert claims["served"] == claims["stored"] == len(QUERIES)
    gold = {doc for _q, _t, docs in QUERIES for doc in docs}
    assert checks["gold_served"] == len(gold)
    assert checks["distractors_served"] == DISTRACTORS
    assert checks["served"] == checks["stored"] == len(gold) + DISTRACTORS
    assert checks["gold_missing_from_collection"] == 0
    # Every stored item has a label of the active model: none left unclassified.
    for side in (claims, checks):
        assert sum(side["labels"].values()) == side["stored"]
        assert set(side["labels"]) <= {"rumour", "clarification", "other"}
    assert sum(checks["labels_of_gold"].values()) == len(gold)
    # Recent dates: none of the served items carries its real date.
    assert claims["real_dates"] == checks["real_dates"] == 0
    # Failed tasks are counted, not asserted absent: the sweeper's recovery is part of the run.
    errors = recent["task_errors"]
    assert errors["count"] == sum(errors["by_task"].values())
    assert len(errors["examples"]) == min(errors["count"], 5)
    assert recent["feed_requests"] >= 5


def test_quality_figures_are_shares_that_add_up(recent: dict[str, Any]) -> None:
    assert recent["queries"] == recent["queries_with_gold"] == len(QUERIES)
    assert 0 <= recent["queries_with_pairs"] <= len(QUERIES)
    for share in ("top_pair_is_gold", "gold_among_pairs"):
        assert 0 <= recent[share] <= 1
    # A best pair that is gold is a gold pair among the query's pairs.
    assert recent["top_pair_is_gold"] <= recent["gold_among_pairs"]
    assert sum(recent["pairs_by_sides"].values()) == recent["pairs"]
    claim_rumour = sum(
        n for sides, n in recent["pairs_by_sides"].items() if sides.startswith("claim ->")
    )
    assert recent["pairs_whose_rumour_is_a_claim"] == claim_rumour
    assert 0 <= recent["pairs_to_gold"] <= claim_rumour
    if claim_rumour:
        assert recent["pair_precision"] == round(recent["pairs_to_gold"] / claim_rumour, 4)
    else:
        assert recent["pair_precision"] is None
    assert set(recent["definitions"]) >= {"top_pair_is_gold", "gold_among_pairs", "pair_precision"}


def test_the_report_names_the_models_that_ran(recent: dict[str, Any]) -> None:
    models = recent["models"]
    assert models["item"] and models["pair"]
    assert models["classifications_by"] == [models["item"]]
    assert set(models["pairs_scored_by"]) <= {models["pair"]}


def test_real_dates_are_those_of_the_fact_checks_and_all_real_those_of_the_tweets_too(
    tmp_path: Path, services: Endpoints, session_db_url: str
) -> None:
    real = replay(tmp_path / "real", services, session_db_url, "real")
    assert real["settled"] is True
    # vc-bridge-2 has no date: it falls back to a recent one. Claims stay new.
    assert real["factchecks"]["real_dates"] == real["factchecks"]["served"] - 1
    assert real["claims"]["real_dates"] == 0
    both = replay(tmp_path / "all", services, session_db_url, "all-real")
    # q4 has no signature: it falls back to a recent date.
    assert both["claims"]["real_dates"] == len(QUERIES) - 1
    assert both["factchecks"]["real_dates"] == both["factchecks"]["served"] - 1
    assert both["claims"]["stored"] == len(QUERIES)


def test_a_split_that_is_not_there_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    result = run_tracker("bench", "replay", "--split", f"{tmp_path}:nope", env=dict(os.environ))
    assert result.returncode == 1
    assert "queries.nope.jsonl" in result.stderr


def test_task_failures_in_the_worker_log_are_counted_by_task(tmp_path: Path) -> None:
    log = tmp_path / "pipeline.log"
    failed = "Task rt.pair_items[5e1f] raised unexpected: ValueError('x')"
    log.write_text(
        json.dumps({"event": "Task rt.pair_items[5e1f] received", "level": "info"})
        + "\n"
        + json.dumps({"event": failed, "level": "error", "exception": "ValueError: x"})
        + "\n[2026-12-06 03:13:39,085: WARNING/MainProcess] "
        + json.dumps({"event": "beat lost its broker", "level": "error"})
        + "\nworker: Cold shutdown (MainProcess)\n"
    )
    errors = task_errors(log)
    assert errors["count"] == 2
    assert errors["by_task"] == {"rt.pair_items": 1, "other": 1}
    assert errors["examples"][0] == f"{failed} ValueError: x"


def test_choosing_what_to_serve_runs_no_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers embed what they are served; embedding the collection beforehand only to
    draw distractors cost a fresh machine 20 to 25 minutes on CheckThat!'s 14,000 texts."""

    def refused() -> None:
        raise AssertionError("the encoder was loaded")

    monkeypatch.setattr(embedder, "default", refused)
    write_split(tmp_path)
    chosen = load(tmp_path, "tiny", DISTRACTORS, lambda _message: None)
    gold = {doc for _q, _text, docs in QUERIES for doc in docs}
    assert {key for key, _text in chosen.factchecks} >= gold
    assert len(chosen.factchecks) == len(gold) + DISTRACTORS
    assert all(text.embedding is None for _key, text in chosen.factchecks)
