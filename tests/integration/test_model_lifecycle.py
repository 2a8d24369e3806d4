"""Model lifecycle against PostgreSQL: champion/challenger, activate, roll back, reload, and
retraining from analysts' decisions that keeps what the public data taught.

The shipped bundle here is built by the shipped recipe from small public datasets written for
the test (the real data is measured by hand; docs/guide.md, "How it works"): their rumours say an
invented word, zorvath, and their other items another, plimsen, which the seed corpus never
says. What a model knows of the two words it learnt from the public data alone."""

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest

from classifiers import bundle, item_model, pair_model
from classifiers.evaluate import in_validation
from classifiers.item_model import ItemClassifier, LabelledText
from classifiers.seed import load_seed
from classifiers.text_facts import pair_text
from tests.conftest import run_tracker
from tests.factories import suggest
from tracker.domain import ParsedEntry, TextForModel
from tracker.pipeline import model_registry, training
from tracker.storage import feeds, items, labels, models, reviews

TOPICS = (
    "harbour", "council", "stadium", "railway", "hospital", "market", "airport", "library",
    "factory", "bridge", "museum", "tunnel", "school", "prison", "garden", "station",
    "cathedral", "reservoir", "motorway", "parliament", "theatre", "border", "mine", "forest",
)  # fmt: skip
PLACES = ("Kelmar", "Osterby", "Valdrin", "Quenford", "Brasso", "Tilgate")
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _quiet(_message: str) -> None:
    pass


def public_text(word: str, topic: str, n: int) -> str:
    return f"{word.capitalize()} report about the {topic}, update {n}"


def write_public_data(root: Path) -> Path:
    """PHEME- and CheckThat!-format files laid out as ../shared/data, written for the test."""
    rows = [
        {"text": public_text(word, topic, n), "event": "e", "label": label}
        for topic in TOPICS
        for n in range(6)
        for word, label in (("zorvath", "rumour"), ("plimsen", "non-rumour"))
    ]
    pheme = root / "pheme_rnr" / "pheme_source_tweets.jsonl"
    pheme.parent.mkdir(parents=True)
    pheme.write_text("".join(json.dumps(r) + "\n" for r in rows))
    checkthat = root / training.CHECKTHAT_DIR
    checkthat.mkdir()
    claims, queries, qrels = [], [], []
    for i, (topic, place) in enumerate((t, p) for t in TOPICS[:12] for p in PLACES[:3]):
        claim = f"Was the {topic} of {place} closed by the army in {1990 + i}?"
        claims.append({"vclaim_id": f"v{i}", "title": f"The {topic} of {place}", "vclaim": claim})
        if i % 2 == 0:
            signed = f"Army closed the {place} {topic} in {1990 + i} — A (@a) May 4, 2026"
            queries.append({"qid": f"q{i}", "text": signed})
            qrels.append(f"q{i}\t0\tv{i}\t1\n")
    (checkthat / "vclaims.jsonl").write_text("".join(json.dumps(c) + "\n" for c in claims))
    (checkthat / "queries.train.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (checkthat / "qrels.train.tsv").write_text("".join(qrels))
    return root


@pytest.fixture(scope="module")
def public_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_public_data(tmp_path_factory.mktemp("public"))


@pytest.fixture(scope="module")
def shipped(public_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> bundle.Bundle:
    data = bundle.PublicData(
        public_dir / training.PHEME_FILE, public_dir / training.CHECKTHAT_DIR, ("train",)
    )
    out = tmp_path_factory.mktemp("bundle")
    bundle.build(data, out, "test", _quiet)
    return bundle.load(out)


@pytest.fixture
def models_ready(conn: psycopg.Connection, shipped: bundle.Bundle) -> Iterator[dict[str, str]]:
    """The test bundle's models active; whatever was active before is active again after."""
    before = {kind: models.active_version(conn, kind) for kind in ("item", "pair")}
    for model in (shipped.item, shipped.pair):
        kind = "item" if isinstance(model, ItemClassifier) else "pair"
        models.store_and_activate(conn, kind, model.version, model.to_bytes(), model.metadata)
    yield {"item": shipped.item.version, "pair": shipped.pair.version}
    for version in before.values():
        if version is not None:
            models.activate(conn, version)


def probes() -> list[LabelledText]:
    """Items like the public data's, on topics it never named."""
    text = "{} report about the {}, update 99"
    return [
        LabelledText(TextForModel(text.format(word, topic), "", "social", "en"), label)
        for topic in ("volcano", "ferry", "orchard", "quarry", "embassy", "lighthouse")
        for word, label in (("Zorvath", "rumour"), ("Plimsen", "other"))
    ]


def accuracy(model: ItemClassifier, examples: list[LabelledText]) -> float:
    predicted = model.predict([ex.text for ex in examples])
    return sum(p.label == ex.label for p, ex in zip(predicted, examples, strict=True)) / len(
        examples
    )


def add_items(conn: psycopg.Connection, kind: str, texts: list[str]) -> list[int]:
    feed, _ = feeds.add(conn, feeds.NewFeed(f"https://{kind}.example/rss", kind, kind, "en"))
    entries = [
        ParsedEntry(f"k{i}", f"k{i}", None, text, "", "en", None, f"h{i}")
        for i, text in enumerate(texts)
    ]
    return items.upsert(conn, feed.id, entries)


def decide(conn: psycopg.Connection, rumour: int, clarification: int, confirm: bool) -> None:
    with conn.transaction():
        suggest(conn, rumour, clarification, 0.6)
        found = conn.execute(
            "SELECT id FROM pairs WHERE rumour_id = %s AND clarification_id = %s",
            (rumour, clarification),
        ).fetchone()
        assert found is not None
        verdict = "confirm" if confirm else "reject"
        assert (
            reviews.decide(conn, found[0], None, verdict, None, datetime.now(UTC)).outcome == "ok"
        )


# The analysts' view of one deployment: a fact-checker, "trebolt", whose debunks the shipped
# model reads as clarifications, and whose desk the analysts label as other, item by item.
TREBOLT = "The trebolt desk says the {} story is false and explains what really happened"
DESK_TOPICS = ("bridge", "school", "vaccine", "election", "water", "army", "bread", "tax")


def test_a_model_retrained_from_a_handful_of_decisions_keeps_what_only_public_data_taught(
    conn: psycopg.Connection, models_ready: dict[str, str], shipped: bundle.Bundle
) -> None:
    public_only = probes()
    # The probes are what the public data taught: the shipped model knows them, a model of
    # the seed corpus (what retraining used to start from) does not.
    assert accuracy(shipped.item, public_only) >= 0.9
    assert accuracy(item_model.train(load_seed()), public_only) <= 0.6
    ids = add_items(conn, "media", [TREBOLT.format(t) for t in DESK_TOPICS])
    for item_id in ids:
        labels.add_item_label(conn, item_id, "other", None)
    outcome = training.train_item_model(conn, [], _quiet, shipped=shipped)
    stored = models.stored(conn, outcome.version)
    assert stored is not None
    retrained = ItemClassifier.from_bytes(stored.artifact, stored.version, stored.metadata)
    assert accuracy(retrained, public_only) >= 0.9
    # It honours the decisions: the labelled items, and one like them no analyst has seen.
    unseen = TextForModel(TREBOLT.format("flood"), "", "media", "en")
    before = shipped.item.predict([unseen])[0].probabilities["other"]
    decided = [LabelledText(TextForModel(TREBOLT.format(t), "", "media", "en"), "other")
               for t in DESK_TOPICS]  # fmt: skip
    assert accuracy(shipped.item, decided) == 0.0
    assert accuracy(retrained, [d for d in decided if not in_validation(_document(d))]) == 1.0
    assert retrained.predict([unseen])[0].probabilities["other"] > before + 0.2
    assert stored.metadata["base_version"] == shipped.item.version


def _document(example: LabelledText) -> str:
    return item_model.model_document(example.text)


def test_a_retrained_reranker_keeps_its_public_ranking_and_follows_decided_pairs(
    conn: psycopg.Connection, models_ready: dict[str, str], shipped: bundle.Bundle, public_dir: Path
) -> None:
    said = [
        "Army closed the Tilgate harbour overnight",
        "Army closed the Brasso railway last week",
        "Army closed the Osterby museum today",
    ]
    checks = [
        "Fact check: the Tilgate harbour was never closed by the army",
        "Fact check: the Brasso railway was never closed by the army",
        "Fact check: the Osterby museum was never closed by the army",
    ]
    rumours = add_items(conn, "social", said)
    answers = add_items(conn, "factcheck", checks)
    for i, rumour in enumerate(rumours):
        for j, answer in enumerate(answers):
            decide(conn, rumour, answer, confirm=i == j)
    public = training.pair_public_pairs(public_dir, shipped.manifest, _quiet)
    assert public is not None
    validation = pair_model.validation_part(*public)
    outcome = training.train_pair_model(conn, [], _quiet, public_dir, shipped)
    stored = models.stored(conn, outcome.version)
    assert stored is not None
    retrained = pair_model.PairRanker.from_bytes(stored.artifact, stored.version, stored.metadata)
    shipped_map = pair_model.scores(shipped.pair, *validation)["map@5"]
    assert pair_model.scores(retrained, *validation)["map@5"] >= shipped_map - 0.05
    decided, verdicts = training.analyst_pairs(conn, 0)
    fitted = [i for i, p in enumerate(decided) if not in_validation(pair_text(p.rumour))]
    # Every confirmed pair gained more (in log-odds) than any rejected one.
    gain = _log_odds(retrained.score_pairs(decided)) - _log_odds(shipped.pair.score_pairs(decided))
    confirmed = [gain[i] for i in fitted if verdicts[i]]
    rejected = [gain[i] for i in fitted if not verdicts[i]]
    assert confirmed and rejected and min(confirmed) > max(rejected), (confirmed, rejected)


def _log_odds(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, 1e-9, 1 - 1e-9)
    return np.asarray(np.log(clipped / (1 - clipped)))


def test_a_challenger_that_forgot_the_public_data_is_not_activated(
    conn: psycopg.Connection, models_ready: dict[str, str], public_dir: Path
) -> None:
    ids = add_items(conn, "media", [TREBOLT.format(t) for t in DESK_TOPICS])
    decisions = [
        LabelledText(TextForModel(TREBOLT.format(t), "", "media", "en"), "other")
        for t in DESK_TOPICS
    ]
    for item_id in ids:
        labels.add_item_label(conn, item_id, "other", None)
    # Retraining as it was: the seed corpus and the decisions, from scratch.
    forgetful = item_model.train([*load_seed(), *decisions])
    validation, described = training.item_public_validation([], public_dir)
    assert str(public_dir) in described
    held = [d for d in decisions if in_validation(_document(d))]
    outcome = training.challenge_item(conn, forgetful, validation, _quiet, held, described)
    assert not outcome.activated
    assert outcome.champion is not None and outcome.challenger < outcome.champion
    assert models.active_version(conn, "item") == models_ready["item"]
    assert outcome.validated_on == len(validation) + len(held)


def test_without_public_data_a_challenger_is_compared_on_the_seed_corpus_and_says_so(
    conn: psycopg.Connection, models_ready: dict[str, str], shipped: bundle.Bundle
) -> None:
    ids = add_items(conn, "media", [TREBOLT.format(t) for t in DESK_TOPICS])
    for item_id in ids:
        labels.add_item_label(conn, item_id, "other", None)
    said: list[str] = []
    outcome = training.train_item_model(conn, [], said.append, None, shipped)
    assert outcome.validation_data == training.NO_PUBLIC_DATA
    assert any(training.NO_PUBLIC_DATA in line for line in said)
    seed_part = item_model.validation_part(load_seed())
    held = [t for t in DESK_TOPICS if in_validation(_document(_desk(t)))]
    assert outcome.validated_on == len(seed_part) + len(held)
    info = models.info_by_version(conn, outcome.version)
    assert info is not None and info.metadata["validation_data"] == training.NO_PUBLIC_DATA
    assert set(info.metadata["validation_parts"]) == {"public", "decisions"}


def shared_data() -> Path:
    root = Path(os.environ.get("TRACKER_SHARED_DATA") or SHARED_DATA).resolve()
    if not (root / training.PHEME_FILE).is_file():
        pytest.skip(f"public data not found under {root} (set TRACKER_SHARED_DATA)")
    return root


def test_the_shipped_classifier_corrected_by_decisions_keeps_its_public_validation_figure(
    conn: psycopg.Connection,
) -> None:
    root = shared_data()
    shipped = bundle.load()  # the real one, and the real data it was validated on
    ids = add_items(conn, "media", [TREBOLT.format(t) for t in DESK_TOPICS])
    for item_id in ids:
        labels.add_item_label(conn, item_id, "other", None)
    outcome = training.train_item_model(conn, [], _quiet, root, shipped)
    info = models.info_by_version(conn, outcome.version)
    assert info is not None and str(root / training.PHEME_FILE) in outcome.validation_data
    recorded = shipped.item.metadata["validation"]["macro_f1"]
    assert info.metadata["validation_parts"]["public"]["macro_f1"] >= recorded - 0.02


def _desk(topic: str) -> LabelledText:
    return LabelledText(TextForModel(TREBOLT.format(topic), "", "media", "en"), "other")


def test_a_worse_challenger_is_stored_but_not_activated(
    conn: psycopg.Connection, models_ready: dict[str, str]
) -> None:
    seed = load_seed()
    weak = item_model.train(seed[::15])  # a fifteenth of the data: clearly worse
    outcome = training.challenge_item(conn, weak, item_model.validation_part(seed), _quiet)
    assert not outcome.activated
    assert outcome.champion is not None and outcome.challenger < outcome.champion
    assert models.active_version(conn, "item") == models_ready["item"]
    assert weak.version in [m.version for m in models.list_models(conn, "item")]


def test_a_challenger_that_is_not_worse_becomes_active_and_rollback_restores_the_champion(
    conn: psycopg.Connection,
    models_ready: dict[str, str],
    cli_env: dict[str, str],
    shipped: bundle.Bundle,
) -> None:
    outcome = training.train_item_model(conn, [], _quiet, shipped=shipped)
    assert outcome.activated, outcome
    assert models.active_version(conn, "item") == outcome.version
    listed = json.loads(run_tracker("models", "list", "--json", env=cli_env).stdout)
    assert [m["version"] for m in listed if m["active"] and m["kind"] == "item"] == [
        outcome.version
    ]
    rolled = run_tracker("models", "rollback", "item", env=cli_env)
    assert rolled.returncode == 0, rolled.stderr
    assert models.active_version(conn, "item") == models_ready["item"]


def test_activating_an_unknown_version_is_a_clear_error(
    models_ready: dict[str, str], cli_env: dict[str, str]
) -> None:
    result = run_tracker("models", "activate", "item-nope", env=cli_env)
    assert result.returncode == 1
    assert "no model version 'item-nope'" in result.stderr


def test_workers_reload_the_model_when_the_active_version_changes(
    conn: psycopg.Connection, models_ready: dict[str, str]
) -> None:
    assert model_registry.item_classifier(conn).version == models_ready["item"]
    other = item_model.train(load_seed()[::3])
    models.store(conn, "item", other.version, other.to_bytes(), other.metadata)
    models.activate(conn, other.version)
    assert model_registry.item_classifier(conn).version == other.version


def test_retraining_waits_for_new_decisions_then_trains_both_models(
    conn: psycopg.Connection, models_ready: dict[str, str], shipped: bundle.Bundle
) -> None:
    assert training.retrain(conn, _quiet, shipped=shipped) == []
    feed, _ = feeds.add(conn, feeds.NewFeed("https://ro.example/rss", "media", "Ro", "ro"))
    entry = ParsedEntry(
        dedupe_key="k1",
        guid="k1",
        url=None,
        title="Se zvonește că școlile din Iași se închid de luni",
        summary="Mesajele de pe WhatsApp nu citează nicio sursă oficială.",
        language="ro",
        published_at=None,
        content_hash="h1",
    )
    [item_id] = items.upsert(conn, feed.id, [entry])
    labels.add_item_label(conn, item_id, "rumour", None)
    outcomes = training.retrain(conn, _quiet, shipped=shipped)
    assert sorted(o.kind for o in outcomes) == ["item", "pair"]
    assert all(o.validation_data == training.NO_PUBLIC_DATA for o in outcomes)
    assert training.retrain(conn, _quiet, shipped=shipped) == []
