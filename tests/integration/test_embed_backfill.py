"""The backfill of pairing's sentence vectors (`tracker items embed`) against PostgreSQL, with the
shipped models: rows classified before vectors (0018) and edited items get the vector their text
would have had at classification; rows that have one, or belong to another model, are left
alone; a dry run and a second run write nothing."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from classifiers import embedder
from tests.conftest import free_port, run_tracker
from tests.factories import entry
from tracker.domain import Prediction, TextForModel
from tracker.pipeline import classify, embed_backfill
from tracker.pipeline.model_registry import item_classifier
from tracker.storage import classifications, feeds, items, models

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
CLAIMS = [
    ("Video shows a ten-metre anaconda in the Xingu river", "A viral clip, shared widely."),
    ("Romanian F-16s fly secret missions over Ukraine", "Pilots were seen near the border."),
    ("Tap water in Valea Verde is poisoned, residents say", "Messages urge people not to drink."),
]
CHECKS = [
    ("The anaconda video is miscaptioned", "The snake is about five metres long, in Peru."),
    ("The Ministry: no Romanian aircraft flew over Ukraine", "The reports are false."),
    ("Water in Valea Verde meets every standard", "The utility published its lab results."),
]


def expected(title: str, summary: str) -> np.ndarray:
    """The vector of this text, computed here and not read from the tracker."""
    found: np.ndarray = embedder.default().embed(
        [embedder.embedding_text(TextForModel(title, summary))]
    )[0]
    return found


def stored(conn: psycopg.Connection, version: str) -> dict[int, np.ndarray | None]:
    rows = conn.execute(
        "SELECT item_id, embedding::real[] FROM pairing_candidates WHERE model_version = %s",
        (version,),
    ).fetchall()
    return {i: None if e is None else np.asarray(e, np.float32) for i, e in rows}


def forget(conn: psycopg.Connection, item_ids: list[int]) -> None:
    """As a row classified before migration 0018 stands."""
    conn.execute(
        "UPDATE pairing_candidates SET embedding = NULL WHERE item_id = ANY(%s)", (item_ids,)
    )


@pytest.fixture
def version(conn: psycopg.Connection, shipped_models: None) -> str:
    return item_classifier(conn).version


@pytest.fixture
def texts(conn: psycopg.Connection, version: str) -> dict[int, tuple[str, str]]:
    """Three claims and three fact-checks, classified: each has a pairing role and a vector."""
    found: dict[int, tuple[str, str]] = {}
    for kind, stories in (("media", CLAIMS), ("factcheck", CHECKS)):
        feed, _ = feeds.add(conn, feeds.NewFeed(f"http://{kind}.example/feed", kind, kind, "en"))
        entries = [entry(f"{kind}-{n}", t, s, HOUR_AGO) for n, (t, s) in enumerate(stories)]
        ids = items.upsert(conn, feed.id, entries)
        found.update(zip(ids, stories, strict=True))
    # Every claim is a rumour candidate (claim_min_rumour 0): all six rows are pairing's.
    classify.classify_items(conn, list(found), 1.1, None, claim_min_rumour=0.0)
    assert set(stored(conn, version)) == set(found)
    assert all(v is not None for v in stored(conn, version).values())
    return found


def test_rows_without_a_vector_get_the_vector_of_their_text_and_the_others_are_left_alone(
    conn: psycopg.Connection, version: str, texts: dict[int, tuple[str, str]]
) -> None:
    ids = sorted(texts)
    missing = ids[::2]
    forget(conn, missing)
    # Another model's row without a vector is that model's business, not this run's.
    other = Prediction("rumour", 0.9, {"rumour": 0.9})
    classifications.insert(conn, "an-earlier-model", [(ids[1], other, "rumour")])
    before = stored(conn, version)
    seen: list[embed_backfill.Progress] = []

    done = embed_backfill.backfill(conn, version, seen.append, batch_size=2)

    assert done == len(missing) == 3
    assert [(p.done, p.total) for p in seen] == [(2, 3), (3, 3)]
    assert seen[-1].line().startswith("embedded 3 of 3 items (")
    after = stored(conn, version)
    for item_id in missing:
        vector = after[item_id]
        assert vector is not None and vector.shape == (embedder.DIM,)
        assert np.allclose(vector, expected(*texts[item_id]), atol=1e-3), item_id
    for item_id in set(ids) - set(missing):
        assert np.array_equal(after[item_id], before[item_id]), item_id  # type: ignore[arg-type]
    assert stored(conn, "an-earlier-model") == {ids[1]: None}
    assert embed_backfill.backfill(conn, version, seen.append) == 0
    assert embed_backfill.remaining(conn, version) == 0


def test_an_edited_item_gets_the_vector_of_its_new_text(
    conn: psycopg.Connection, version: str, texts: dict[int, tuple[str, str]]
) -> None:
    [check_feed] = [f for f in feeds.list_all(conn) if f.kind == "factcheck"]
    edited = ("The anaconda video was filmed in Peru", "A five-metre snake, not ten, in 2019.")
    with conn.transaction():
        [item_id] = items.upsert(
            conn,
            check_feed.id,
            [replace(entry("factcheck-0", *edited, HOUR_AGO), content_hash="v2")],
        )
    assert stored(conn, version)[item_id] is None  # dropped with the old text
    assert embed_backfill.remaining(conn, version) == 1

    assert embed_backfill.backfill(conn, version, lambda _: None) == 1

    vector = stored(conn, version)[item_id]
    assert vector is not None
    assert np.allclose(vector, expected(*edited), atol=1e-3)
    assert not np.allclose(vector, expected(*texts[item_id]), atol=1e-3)


def test_a_limited_run_embeds_the_first_items_by_id_and_the_next_run_the_rest(
    conn: psycopg.Connection, version: str, texts: dict[int, tuple[str, str]]
) -> None:
    ids = sorted(texts)
    forget(conn, ids)
    assert embed_backfill.remaining(conn, version, limit=4) == 4

    assert embed_backfill.backfill(conn, version, lambda _: None, batch_size=3, limit=4) == 4

    after = stored(conn, version)
    assert [i for i in ids if after[i] is None] == ids[4:]
    assert embed_backfill.backfill(conn, version, lambda _: None) == 2
    assert embed_backfill.remaining(conn, version) == 0


def test_the_command_counts_on_a_dry_run_then_embeds_then_finds_nothing_left(
    conn: psycopg.Connection,
    version: str,
    texts: dict[int, tuple[str, str]],
    cli_env: dict[str, str],
) -> None:
    ids = sorted(texts)
    forget(conn, ids[:3])
    before = stored(conn, version)

    dry = run_tracker("items", "embed", "--dry-run", env=cli_env)
    assert dry.returncode == 0, dry.stderr
    assert f"3 items would be embedded (item model {version})" in dry.stdout
    limited = run_tracker("items", "embed", "--dry-run", "--limit", "2", env=cli_env)
    assert "2 items would be embedded" in limited.stdout
    after_dry = stored(conn, version)
    assert all(after_dry[i] is None for i in ids[:3])
    assert all(np.array_equal(after_dry[i], before[i]) for i in ids[3:])  # type: ignore[arg-type]

    run = run_tracker("items", "embed", "--batch", "2", env=cli_env)
    assert run.returncode == 0, run.stderr
    assert "embedded 2 of 3 items (" in run.stdout and "embedded 3 of 3 items (" in run.stdout
    assert "3 items embedded, 0 still without a vector" in run.stdout
    assert all(v is not None for v in stored(conn, version).values())

    again = run_tracker("items", "embed", env=cli_env)
    assert again.returncode == 0, again.stderr
    assert "0 items embedded, 0 still without a vector" in again.stdout


def test_the_command_says_so_when_no_item_model_is_active(
    conn: psycopg.Connection, version: str, cli_env: dict[str, str]
) -> None:
    # The model store outlives each test: the version is active again afterwards.
    models.retire(conn, version)
    try:
        result = run_tracker("items", "embed", env=cli_env)
    finally:
        models.activate(conn, version)
    assert result.returncode == 1
    assert "no item model is active" in result.stderr


def test_the_command_says_so_when_the_database_is_unreachable(
    cli_env: dict[str, str],
) -> None:
    env = {**cli_env, "TRACKER_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    result = run_tracker("items", "embed", "--dry-run", env=env)
    assert result.returncode == 1
    assert "error: cannot reach the database: " in result.stderr
    assert "Traceback" not in result.stderr
