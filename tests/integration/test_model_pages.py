"""The Models page and its API on a real PostgreSQL: versions with metrics and a server-drawn
precision-recall curve, activate and roll back (admin), and a worse challenger refused."""

import re
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from classifiers import item_model
from classifiers.seed import load_seed
from tests.factories import add_user, csrf_token, log_in
from tests.integration.test_access import add_token
from tests.integration.test_web import make_app, query
from tracker.pipeline import model_registry, training
from tracker.storage import models

pytestmark = pytest.mark.integration

BOSS = "boss@newsroom.example"
ANA = "ana@newsroom.example"
OLD = "item-20250101000000-oldmodel"
ERROR = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.DOTALL)


def _quiet(_message: str) -> None:
    pass


@pytest.fixture
def stored(db_url: str) -> Iterator[dict[str, int]]:
    """The seed models active plus OLD, an item model from before curves were kept; the seed
    models are active again after the test and the models it added are gone."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        model_registry.ensure_models(conn)
        before = {m.version for m in models.list_models(conn)}
        active = {k: models.active_version(conn, k) or "" for k in ("item", "pair")}
        seed = models.active(conn, "item")
        assert seed is not None
        # The seed's own artifact under another name: loadable if a worker ever picked it up.
        models.store(conn, "item", OLD, seed.artifact, {"validation": {"macro_f1": 0.5}})
        yield {m.version: m.id for m in models.list_models(conn)}
        for version in active.values():
            models.activate(conn, version)
        added = [m.version for m in models.list_models(conn) if m.version not in before]
        conn.execute("DELETE FROM models WHERE version = ANY(%s)", (added,))


@pytest.fixture
def admin(db_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(db_url), follow_redirects=False) as client:
        add_user(db_url, BOSS, "admin")
        log_in(client, BOSS)
        yield client


def active_item(db_url: str) -> str:
    return str(query(db_url, "SELECT version FROM models WHERE kind = 'item' AND active")[0][0])


def actions(db_url: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in query(db_url, "SELECT action, target FROM audit_log ORDER BY id")]


def post(client: TestClient, path: str, **form: str) -> httpx.Response:
    response: httpx.Response = client.post(
        path, data={"csrf_token": csrf_token(client, "/models"), **form}
    )
    return response


def test_the_models_page_shows_versions_metrics_and_a_precision_recall_curve(
    db_url: str, stored: dict[str, int]
) -> None:
    with TestClient(make_app(db_url), follow_redirects=False) as client:
        add_user(db_url, "vic@newsroom.example", "viewer")
        log_in(client, "vic@newsroom.example")
        page = client.get("/models")
    assert page.status_code == 200 and 'href="/models"' in page.text
    with psycopg.connect(db_url) as conn:
        seed = {m.kind: m for m in models.list_models(conn) if m.active}
    for model in seed.values():
        section = page.text.split(f'id="model-{model.id}"')[1].split("</section>")[0]
        assert model.version in section and "active" in section
        assert model.metadata["sklearn_version"] in section
        assert model.metadata["data_hash"][:16] in section
        assert '<svg class="pr-curve"' in section
        points = re.search(r'<polyline points="([^"]+)"', section)
        assert points and len(points.group(1).split()) == len(model.metadata["pr_curve"]["recall"])
    assert "macro_f1" in page.text and "map@5" in page.text and "best_f1" in page.text
    # best_f1 is explained beside the thresholds the tracker really runs with.
    assert "not the settings the tracker runs with" in page.text
    assert "pairs suggested from a score of 0.2" in " ".join(page.text.split())
    old = page.text.split(f'id="model-{stored[OLD]}"')[1].split("</section>")[0]
    assert "No curve recorded" in old and "<svg" not in old
    assert "/activate" not in page.text and "/models/rollback" not in page.text  # a viewer


def test_an_admin_activates_a_version_and_rolls_back_and_both_are_audited(
    admin: TestClient, db_url: str, stored: dict[str, int]
) -> None:
    seed = active_item(db_url)
    activated = post(admin, f"/models/{stored[OLD]}/activate")
    assert activated.status_code == 303
    assert active_item(db_url) == OLD
    assert f"{OLD} is now the active item model" in admin.get("/models").text
    rolled = post(admin, "/models/rollback", kind="item")
    assert rolled.status_code == 303
    assert active_item(db_url) == seed
    assert actions(db_url) == [("model.activate", OLD), ("model.rollback", seed)]
    nothing = post(admin, "/models/rollback", kind="tree")
    assert nothing.status_code == 409
    assert post(admin, "/models/999999/activate").status_code == 404


def test_a_challenger_worse_than_its_champion_is_refused_with_a_clear_message(
    admin: TestClient, db_url: str, stored: dict[str, int]
) -> None:
    seed_examples = load_seed()
    weak = item_model.train(seed_examples[::15])  # a fifteenth of the data: clearly worse
    with psycopg.connect(db_url, autocommit=True) as conn:
        validation = item_model.validation_part(seed_examples)
        outcome = training.challenge_item(conn, weak, validation, _quiet)
        assert not outcome.activated
        weak_id = next(m.id for m in models.list_models(conn) if m.version == weak.version)
    seed = active_item(db_url)
    refused = admin.post(
        f"/models/{weak_id}/activate", data={"csrf_token": csrf_token(admin, "/models")}
    )
    assert refused.status_code == 409
    message = " ".join(ERROR.findall(refused.text)[0].split())
    assert weak.version in message and "below" in message and "champion" in message
    assert active_item(db_url) == seed and actions(db_url) == []
    _, token = add_token(db_url, BOSS, "admin")
    api = admin.post(
        f"/api/v1/models/{weak_id}/activate", headers={"authorization": f"Bearer {token}"}
    )
    assert api.status_code == 409 and "below" in api.json()["detail"]
    assert active_item(db_url) == seed


def test_the_api_activates_and_rolls_back_and_an_analyst_may_not(
    db_url: str, stored: dict[str, int]
) -> None:
    add_user(db_url, BOSS, "admin")
    add_user(db_url, ANA, "analyst")
    _, boss = add_token(db_url, BOSS, "admin")
    _, ana = add_token(db_url, ANA, "analyst")
    seed = active_item(db_url)
    with TestClient(make_app(db_url), follow_redirects=False) as client:
        weak = {"authorization": f"Bearer {ana}"}
        assert (
            client.post(f"/api/v1/models/{stored[OLD]}/activate", headers=weak).status_code == 403
        )
        rollback = {"kind": "item"}
        assert (
            client.post("/api/v1/models/rollback", json=rollback, headers=weak).status_code == 403
        )
        log_in(client, ANA)
        assert client.get("/models").status_code == 200
        refused = client.post(
            f"/models/{stored[OLD]}/activate", data={"csrf_token": csrf_token(client, "/models")}
        )
        assert refused.status_code == 403 and active_item(db_url) == seed
        headers = {"authorization": f"Bearer {boss}"}
        done = client.post(f"/api/v1/models/{stored[OLD]}/activate", headers=headers)
        assert done.status_code == 200 and done.json()["active"] is True
        back = client.post("/api/v1/models/rollback", json=rollback, headers=headers)
        assert back.status_code == 200 and back.json()["version"] == seed
    assert active_item(db_url) == seed
