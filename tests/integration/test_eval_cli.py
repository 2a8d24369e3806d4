"""`tracker eval` and `tracker train` on small files in the public datasets' formats, written
here for the test (the real data lives in ../shared/data and is measured by hand)."""

import json
from pathlib import Path

from tests.conftest import run_tracker

CLAIMS = [
    ("v-jets", "Jets flew over Ukraine", "Did Romanian jets fly secret missions over Ukraine?"),
    ("v-water", "Tap water poisoned", "Was the tap water in Valea Verde poisoned by a spill?"),
    ("v-bread", "Bread prices double", "Did bread prices double overnight in Bucharest?"),
    ("v-draft", "Army draft texts", "Is the army sending text messages about a military draft?"),
    ("v-dam", "Dam about to burst", "Is the Siret dam about to burst after the storm?"),
    ("v-vote", "Ballots printed twice", "Were ballots printed twice in Vaslui county?"),
]
TWEETS = [
    ("jets", "v-jets", "Romanian jets fly secret missions over Ukraine every night!"),
    ("water", "v-water", "Do not drink the tap water in Valea Verde, a spill poisoned it"),
    ("bread", "v-bread", "Bread prices doubled overnight in Bucharest, shops say"),
    ("draft", "v-draft", "Got a text message saying I was selected for the military draft"),
    ("dam", "v-dam", "The Siret dam will burst tonight after the storm, evacuate now"),
    ("vote", "v-vote", "Ballots were printed twice in Vaslui county, share before deleted"),
]


def _checkthat(directory: Path) -> Path:
    directory.mkdir()
    with (directory / "vclaims.test-collection.jsonl").open("w") as out:
        for vid, title, claim in CLAIMS:
            out.write(json.dumps({"vclaim_id": vid, "vclaim": claim, "title": title}) + "\n")
    for split, rows in (("train", TWEETS[:4]), ("test", TWEETS[4:] + TWEETS[:1])):
        with (directory / f"queries.{split}.jsonl").open("w") as out:
            for qid, _, text in rows:
                signed = f"{text} — Someone (@someone) May 4, 2026"
                out.write(json.dumps({"qid": f"{split}-{qid}", "text": signed}) + "\n")
        with (directory / f"qrels.{split}.tsv").open("w") as out:
            out.writelines(f"{split}-{qid}\t0\t{vid}\t1\n" for qid, vid, _ in rows)
    return directory


def test_eval_pairing_prints_map_and_recall_and_writes_a_report(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data = _checkthat(tmp_path / "ct")
    result = run_tracker(
        "eval", "pairing", "--train", f"{data}:train", "--test", f"{data}:test", "--json",
        "--report", str(tmp_path / "report"), env=cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"map@1", "map@5", "recall@5", "queries"}
    assert metrics["queries"] == 3
    assert metrics["recall@5"] == 1.0  # six claims: every answer is in the top five
    written = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert written == ["pairing-confusion.png", "pairing-pr.png", "pairing.md"]
    assert (tmp_path / "report" / "pairing-pr.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_rumour_leaves_each_event_out(tmp_path: Path, cli_env: dict[str, str]) -> None:
    rows = []
    for event in ("flood", "election"):
        for i in range(6):
            rumour = {"text": f"BREAKING unconfirmed: {event} cover-up, sources say #{i}?"}
            plain = {"text": f"Live coverage of the {event}: officials held a briefing {i}."}
            rows.append({**rumour, "event": event, "label": "rumour", "user_verified": False})
            rows.append({**plain, "event": event, "label": "non-rumour", "user_verified": True})
    path = tmp_path / "pheme.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_tracker(
        "eval", "rumour", "--train", str(path), "--test", str(path),
        "--events", "flood,election", "--json", env=cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 24
    assert set(metrics["per_event_rumour_f1"]) == {"flood", "election"}
    assert 0 <= metrics["rumour_f1"] <= 1
    # The item model alone, before the context of earlier items, is reported beside it.
    assert set(metrics["without_context"]) == {"rumour_f1", "macro_f1"}


def test_bad_dataset_input_is_a_clear_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "fine", "label": "rumour"}\nnot json\n')
    result = run_tracker("eval", "rumour", "--train", str(path), "--test", str(path), env=cli_env)
    assert result.returncode == 1
    assert "broken.jsonl:2: not JSON" in result.stderr
    missing = run_tracker(
        "eval", "pairing", "--train", "nowhere:train", "--test", "x:y", env=cli_env
    )
    assert missing.returncode == 1
    assert "not a directory" in missing.stderr
    unknown = run_tracker(
        "eval", "rumour", "--train", str(path), "--test", str(path), "--events", "mars",
        env=cli_env,
    )  # fmt: skip
    assert unknown.returncode == 1


def test_train_pair_with_checkthat_data_reports_the_champion_decision(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data = _checkthat(tmp_path / "ct")
    result = run_tracker("train", "pair", "--checkthat", f"{data}:train", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["kind"] == "pair" and outcome["metric"] == "map@5"
    assert 0 <= outcome["challenger"] <= 1
    # A challenger is activated when there is no champion or it scores no worse than one.
    champion = outcome["champion"]
    assert outcome["activated"] is (champion is None or outcome["challenger"] >= champion)
    listed = json.loads(
        run_tracker("models", "list", "--kind", "pair", "--json", env=cli_env).stdout
    )
    active = {m["version"]: m["active"] for m in listed}
    assert active[outcome["version"]] is outcome["activated"]


def test_eval_scores_the_shipped_and_the_active_models_without_training(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data = _checkthat(tmp_path / "ct")
    for model in ("bundle", "active"):
        result = run_tracker(
            "eval", "pairing", "--model", model, "--test", f"{data}:test", "--json", env=cli_env
        )
        assert result.returncode == 0, result.stderr
        metrics = json.loads(result.stdout)
        assert set(metrics) == {"map@1", "map@5", "recall@5", "queries"}
        assert metrics["queries"] == 3
        # No training: progress names the shipped version, which `tracker up` activates.
        assert "fitting" not in result.stderr and "pair-" in result.stderr
    pheme = tmp_path / "pheme.jsonl"
    pheme.write_text(
        json.dumps({"text": "Unconfirmed: dam burst?", "label": "rumour", "event": "e"})
        + "\n"
        + json.dumps({"text": "Officials held a briefing.", "label": "non-rumour", "event": "e"})
        + "\n"
    )
    rumour = run_tracker(
        "eval", "rumour", "--model", "bundle", "--test", str(pheme), "--json", env=cli_env
    )
    assert rumour.returncode == 0, rumour.stderr
    assert json.loads(rumour.stdout)["n"] == 2
    assert "scored: item-" in rumour.stderr


def test_eval_takes_either_training_data_or_a_model(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data = _checkthat(tmp_path / "ct")
    both = run_tracker(
        "eval", "pairing", "--model", "bundle", "--train", f"{data}:train",
        "--test", f"{data}:test", env=cli_env,
    )  # fmt: skip
    neither = run_tracker("eval", "pairing", "--test", f"{data}:test", env=cli_env)
    unknown = run_tracker(
        "eval", "pairing", "--model", "latest", "--test", f"{data}:test", env=cli_env
    )
    for result in (both, neither, unknown):
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
    assert "--model bundle|active" in neither.stderr
    assert "bundle or active" in unknown.stderr


# The claims of TWEETS[4:] + TWEETS[:1] in Russian, in the same order.
RUSSIAN = [
    "Плотина на Сирете прорвётся этой ночью после шторма, срочно эвакуируйтесь",
    "Бюллетени в уезде Васлуй напечатали дважды, распространите, пока не удалили",
    "Румынские самолёты каждую ночь выполняют секретные полёты над Украиной!",
]


def test_eval_languages_compares_each_language_with_the_first(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    english = _checkthat(tmp_path / "en")
    again = _checkthat(tmp_path / "en-again")
    russian = _checkthat(tmp_path / "ru")
    with (russian / "queries.test.jsonl").open("w") as out:
        for (qid, _, _), text in zip(TWEETS[4:] + TWEETS[:1], RUSSIAN, strict=True):
            out.write(json.dumps({"qid": f"test-{qid}", "text": text}) + "\n")
    result = run_tracker(
        "eval", "languages", "--model", "bundle", "--test", f"{english}:test",
        "--test", f"{again}:test", "--test", f"{russian}:test", "--json", env=cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert list(metrics) == ["en:test", "en-again:test", "ru:test"]
    assert [m["language"] for m in metrics.values()] == ["en", "en", "ru"]
    assert all(m["n"] == 3 and 0 <= m["rumour_share"] <= 1 for m in metrics.values())
    assert "fake_agreement" not in metrics["en:test"]
    # The same claims in the same language: the same probabilities, fake by fake.
    assert metrics["en-again:test"]["fake_agreement"] == 1.0
    assert -1 <= metrics["ru:test"]["fake_agreement"] <= 1
