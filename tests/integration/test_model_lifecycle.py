"""Model lifecycle against PostgreSQL: champion/challenger, activate, roll back, reload, and
retraining from analysts' decisions."""

import json
from collections.abc import Iterator

import psycopg
import pytest

from classifiers import item_model
from classifiers.seed import load_seed
from tests.conftest import run_tracker
from tracker import model_registry, training
from tracker.domain import ParsedEntry
from tracker.storage import feeds, items, labels, models


def _quiet(_message: str) -> None:
    pass


@pytest.fixture
def models_ready(conn: psycopg.Connection) -> Iterator[dict[str, str]]:
    """The seed models active; whatever a test activates, the seed models are active after."""
    model_registry.ensure_models(conn)
    active = {kind: models.active_version(conn, kind) or "" for kind in ("item", "pair")}
    yield active
    for version in active.values():
        models.activate(conn, version)


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
    conn: psycopg.Connection, models_ready: dict[str, str], cli_env: dict[str, str]
) -> None:
    outcome = training.train_item_model(conn, [], _quiet)
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
    conn: psycopg.Connection, models_ready: dict[str, str]
) -> None:
    assert training.retrain(conn, _quiet) == []
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
    outcomes = training.retrain(conn, _quiet)
    assert sorted(o.kind for o in outcomes) == ["item", "pair"]
    assert training.retrain(conn, _quiet) == []
