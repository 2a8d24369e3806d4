"""Stored model artifacts that may not be loaded, against PostgreSQL: activating one is refused
(CLI, page, API) and the active model stays; a worker keeps the model it had; a pickled model
from before skops is replaced by a fresh one, never unpickled."""

import copy
import io
import os
from collections.abc import Iterator

import joblib
import psycopg
import pytest
import skops.io as sio
from fastapi.testclient import TestClient

from classifiers import item_model
from classifiers.artifacts import ArtifactError
from classifiers.item_model import ItemClassifier
from classifiers.seed import load_seed
from tests.conftest import run_tracker
from tests.factories import add_user, csrf_token, log_in
from tests.integration.test_access import add_token
from tests.integration.test_web import make_app, query
from tracker.pipeline import model_registry, training
from tracker.storage import models
from tracker.usecases import model_admin

pytestmark = pytest.mark.integration

LEGACY = "item-20240101000000-legacy00"
BAD = "item-20240102000000-tampered"


def _quiet(_message: str) -> None:
    pass


@pytest.fixture
def seed(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> Iterator[models.StoredModel]:
    """The active seed item model, in a worker process that has loaded nothing yet. After the
    test the seed models are active again and the models the test added are gone."""
    model_registry.ensure_models(conn)
    before = {m.version for m in models.list_models(conn)}
    active = {k: models.active_version(conn, k) or "" for k in ("item", "pair")}
    monkeypatch.setattr(model_registry, "_loaded", {})
    monkeypatch.setattr(model_registry, "_refused", {})
    stored = models.active(conn, "item")
    assert stored is not None
    yield stored
    for version in active.values():
        models.activate(conn, version)
    added = [m.version for m in models.list_models(conn) if m.version not in before]
    conn.execute("DELETE FROM models WHERE version = ANY(%s)", (added,))


def _pipeline(stored: models.StoredModel) -> ItemClassifier:
    return ItemClassifier.from_bytes(stored.artifact, stored.version, stored.metadata)


def _joblib(stored: models.StoredModel) -> bytes:
    """The seed model as the tracker stored models before skops."""
    buffer = io.BytesIO()
    joblib.dump(_pipeline(stored).pipeline, buffer)
    return buffer.getvalue()


def _tampered(stored: models.StoredModel) -> bytes:
    pipeline = copy.deepcopy(_pipeline(stored).pipeline)
    pipeline.named_steps["features"].hook_ = os.system
    data: bytes = sio.dumps(pipeline)
    return data


def test_activating_a_pickled_model_is_refused_and_the_active_model_stays(
    conn: psycopg.Connection, db_url: str, seed: models.StoredModel, cli_env: dict[str, str]
) -> None:
    models.store(conn, "item", LEGACY, _joblib(seed), {})
    result = run_tracker("models", "activate", LEGACY, env=cli_env)
    assert result.returncode == 1
    assert f"the artifact of {LEGACY} cannot be loaded" in result.stderr
    assert "pickle (joblib) artifact from before skops" in result.stderr
    assert models.active_version(conn, "item") == seed.version
    assert query(db_url, "SELECT action FROM audit_log") == []


@pytest.mark.parametrize(
    ("artifact", "why"),
    [
        (_tampered, r"untrusted types: posix\.system"),
        (lambda stored: stored.artifact[:1000], "corrupt model artifact"),
        (lambda stored: b"not a model", "not a skops artifact"),
    ],
    ids=["os-system", "truncated", "garbage"],
)
def test_activating_an_artifact_that_fails_validation_is_refused(
    conn: psycopg.Connection, seed: models.StoredModel, artifact: object, why: str
) -> None:
    assert callable(artifact)
    models.store(conn, "item", BAD, artifact(seed), {})
    with pytest.raises(model_admin.ActivationRefused, match=why):
        model_admin.activate(conn, BAD, "test")
    assert models.active_version(conn, "item") == seed.version


def test_a_pair_artifact_stored_as_an_item_model_is_refused(
    conn: psycopg.Connection, seed: models.StoredModel
) -> None:
    pair = models.active(conn, "pair")
    assert pair is not None
    models.store(conn, "item", BAD, pair.artifact, {})
    with pytest.raises(model_admin.ActivationRefused, match="not a pipeline of the item model"):
        model_admin.activate(conn, BAD, "test")
    assert models.active_version(conn, "item") == seed.version


def test_the_page_and_the_api_refuse_a_tampered_artifact_with_409(
    conn: psycopg.Connection, db_url: str, seed: models.StoredModel
) -> None:
    models.store(conn, "item", BAD, _tampered(seed), {})
    info = models.info_by_version(conn, BAD)
    assert info is not None
    with TestClient(make_app(db_url), follow_redirects=False) as client:
        add_user(db_url, "boss@newsroom.example", "admin")
        log_in(client, "boss@newsroom.example")
        page = client.post(
            f"/models/{info.id}/activate", data={"csrf_token": csrf_token(client, "/models")}
        )
        assert page.status_code == 409
        assert "Not activated" in page.text and "posix.system" in page.text
        _, token = add_token(db_url, "boss@newsroom.example", "admin")
        api = client.post(
            f"/api/v1/models/{info.id}/activate", headers={"authorization": f"Bearer {token}"}
        )
    assert api.status_code == 409 and "posix.system" in api.json()["detail"]
    assert models.active_version(conn, "item") == seed.version


def test_rolling_back_to_a_pickled_model_is_refused(
    conn: psycopg.Connection, seed: models.StoredModel
) -> None:
    # A database from before skops: the pickled model was active, then the seed model.
    models.store(conn, "item", LEGACY, _joblib(seed), {})
    models.activate(conn, LEGACY)
    models.activate(conn, seed.version)
    with pytest.raises(model_admin.ActivationRefused, match=r"cannot roll back.*pickle"):
        model_admin.rollback(conn, "item", "test")
    assert models.active_version(conn, "item") == seed.version


def test_a_worker_keeps_its_model_when_the_active_artifact_fails_to_load(
    conn: psycopg.Connection, seed: models.StoredModel
) -> None:
    assert model_registry.item_classifier(conn).version == seed.version
    # Activated behind the tracker's back, as a hand edit of the database would.
    models.store(conn, "item", BAD, _tampered(seed), {})
    models.activate(conn, BAD)
    assert model_registry.item_classifier(conn).version == seed.version
    assert model_registry.item_classifier(conn).version == seed.version


def test_a_worker_without_a_model_refuses_clearly_when_the_active_artifact_fails_to_load(
    conn: psycopg.Connection, seed: models.StoredModel
) -> None:
    models.store(conn, "item", BAD, _tampered(seed), {})
    models.activate(conn, BAD)
    for _ in range(2):  # the second time from memory, with the same message
        with pytest.raises(ArtifactError) as refused:
            model_registry.item_classifier(conn)
        message = str(refused.value)
        assert f"the active item model {BAD} cannot be loaded" in message
        assert "posix.system" in message and "tracker models activate" in message
    assert models.active_version(conn, "item") == BAD


def test_a_pickled_active_model_is_replaced_by_a_fresh_one_and_never_unpickled(
    conn: psycopg.Connection, seed: models.StoredModel
) -> None:
    models.store(conn, "item", LEGACY, _joblib(seed), {})
    models.activate(conn, LEGACY)
    model = model_registry.item_classifier(conn)
    assert model.version != LEGACY
    assert models.active_version(conn, "item") == model.version
    assert model.predict([load_seed()[0].text])[0].label
    kept = models.info_by_version(conn, LEGACY)
    assert kept is not None and not kept.active


def test_a_challenger_replaces_a_pickled_champion_it_cannot_be_compared_with(
    conn: psycopg.Connection, seed: models.StoredModel
) -> None:
    models.store(conn, "item", LEGACY, _joblib(seed), {})
    models.activate(conn, LEGACY)
    examples = load_seed()
    challenger = item_model.train(examples[::3])
    said: list[str] = []
    outcome = training.challenge_item(
        conn, challenger, item_model.validation_part(examples), said.append
    )
    assert outcome.activated and outcome.champion is None
    assert any(f"the active model {LEGACY} cannot be loaded" in s for s in said)
    assert models.active_version(conn, "item") == challenger.version
