"""Model artifacts in skops' format: both models round-trip exactly, and nothing but the types of
our own pipelines is ever built from an artifact. Payloads that would run code create a file
when run, so a test sees whether they ran."""

import copy
import functools
import io
import os
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from classifiers import artifacts, embedder, item_model, pair_model
from classifiers.artifacts import ArtifactError, LegacyArtifact
from classifiers.item_model import CalibratedLogistic, ItemClassifier
from classifiers.pair_model import PairExample, PairRanker
from classifiers.seed import load_seed, load_seed_pairs
from classifiers.style import ItemFeatures
from tracker.domain import TextForModel

ITEMS = [
    TextForModel(
        "Posts claim the army moves tanks north tonight", "Nobody confirmed it.", "social"
    ),
    TextForModel("Ministry: the report about tanks is false", "", "official", "en"),
    TextForModel("Ministerul: informația este falsă", "Nu există mișcări de trupe.", "media", "ro"),
]


def _touch(path: str) -> None:
    Path(path).write_text("ran")


class PickleTripwire:
    """Unpickling it creates the file at `path`."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _touch, (str(self.path),)


class Tripwire:
    """Building it as skops builds objects (`__setstate__`) creates the file at `path`."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __setstate__(self, state: dict[str, Any]) -> None:
        _touch(state["path"])
        self.__dict__.update(state)


@pytest.fixture(scope="module")
def item() -> ItemClassifier:
    return item_model.train(load_seed())  # as tracker.pipeline.model_registry._train_seed trains it


@pytest.fixture(scope="module")
def pair() -> PairRanker:
    return pair_model.train(*load_seed_pairs(), {"public_pairs": 0})


def _pairs() -> list[PairExample]:
    return [PairExample(a, b, 0) for a in ITEMS for b in ITEMS if a is not b]


def test_the_item_model_round_trips_to_identical_probabilities(item: ItemClassifier) -> None:
    loaded = ItemClassifier.from_bytes(item.to_bytes(), item.version, item.metadata)
    rows = item_model.inputs(item.pipeline, ITEMS)
    assert np.array_equal(loaded.pipeline.predict_proba(rows), item.pipeline.predict_proba(rows))
    assert loaded.predict(ITEMS) == item.predict(ITEMS)


def test_an_item_model_from_before_vectors_loads_and_reads_words_alone() -> None:
    seed = load_seed()
    legacy = Pipeline([("features", ItemFeatures()), ("classifier", CalibratedLogistic())])
    legacy.fit([item_model.model_document(ex.text) for ex in seed], [ex.label for ex in seed])
    loaded = ItemClassifier.from_bytes(artifacts.dump(legacy), "item-legacy", {})
    assert item_model.inputs(loaded.pipeline, ITEMS) == [
        item_model.model_document(i) for i in ITEMS
    ]
    # No vector is read: items given another item's vector get the same predictions.
    other = embedder.vector_of(ITEMS[1])
    assert loaded.predict([replace(i, embedding=other) for i in ITEMS]) == loaded.predict(ITEMS)
    assert {p.label for p in loaded.predict(ITEMS)} <= {"rumour", "clarification", "other"}


def test_the_pair_model_round_trips_to_identical_scores(pair: PairRanker) -> None:
    loaded = PairRanker.from_bytes(pair.to_bytes(), pair.version, pair.metadata)
    assert np.array_equal(loaded.score_pairs(_pairs()), pair.score_pairs(_pairs()))


def test_an_artifact_is_a_skops_archive_without_a_pickle(item: ItemClassifier) -> None:
    data = item.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert "schema.json" in names
        assert all(n == "schema.json" or n.endswith(".npy") for n in names)
        # numpy files of plain arrays: their header says so, and no object dtype hides a pickle.
        for name in names:
            if name.endswith(".npy"):
                assert b"'O'" not in archive.read(name)[:128]


def test_a_model_of_one_kind_is_not_loaded_as_the_other(
    item: ItemClassifier, pair: PairRanker
) -> None:
    with pytest.raises(ArtifactError, match="not a pipeline of the pair model"):
        PairRanker.from_bytes(item.to_bytes(), item.version, {})
    with pytest.raises(ArtifactError, match="not a pipeline of the item model"):
        ItemClassifier.from_bytes(pair.to_bytes(), pair.version, {})


def test_a_joblib_artifact_from_before_skops_is_refused(item: ItemClassifier) -> None:
    buffer = io.BytesIO()
    joblib.dump(item.pipeline, buffer)  # what the tracker stored before skops
    with pytest.raises(LegacyArtifact, match="pickle"):
        ItemClassifier.from_bytes(buffer.getvalue(), item.version, {})


def test_a_pickle_that_would_run_code_is_refused_unread(tmp_path: Path) -> None:
    payload = pickle.dumps(PickleTripwire(tmp_path / "refused"))
    with pytest.raises(LegacyArtifact):
        artifacts.load(payload, "item")
    assert not (tmp_path / "refused").exists()
    pickle.loads(payload)  # noqa: S301 - the same bytes, unpickled, do run
    assert (tmp_path / "refused").exists()


def test_a_skops_artifact_with_a_class_off_the_list_is_refused_and_nothing_runs(
    tmp_path: Path,
) -> None:
    wire = Tripwire(tmp_path / "refused")
    payload = sio.dumps(Pipeline([("features", wire), ("classifier", wire)]))
    with pytest.raises(ArtifactError, match=r"untrusted types: tests\.model\.test_artifacts\."):
        artifacts.load(payload, "item")
    assert not (tmp_path / "refused").exists()
    # The same file, loaded by someone who trusts whatever it names, does run.
    sio.loads(payload, trusted=sio.get_untrusted_types(data=payload))
    assert (tmp_path / "refused").exists()


def test_a_reference_to_os_system_is_refused(item: ItemClassifier) -> None:
    tampered = copy.deepcopy(item.pipeline)
    tampered.named_steps["features"].hook_ = os.system
    with pytest.raises(ArtifactError, match=r"untrusted types: posix\.system"):
        artifacts.load(sio.dumps(tampered), "item")
    tampered.named_steps["features"].hook_ = functools.partial(os.system, "true")
    with pytest.raises(ArtifactError, match=r"functools\.partial.*posix\.system"):
        artifacts.load(sio.dumps(tampered), "item")


def test_an_estimator_skops_trusts_but_our_pipelines_do_not_hold_is_refused(
    item: ItemClassifier,
) -> None:
    knn = KNeighborsClassifier(n_neighbors=1).fit([[0.0], [1.0]], ["other", "rumour"])
    tampered = Pipeline([("features", item.pipeline.named_steps["features"]), ("classifier", knn)])
    payload = sio.dumps(tampered)
    assert sio.get_untrusted_types(data=payload) == [
        "classifiers.item_model.WordsAndMeaning",
        "classifiers.style.ItemFeatures",
    ]
    with pytest.raises(ArtifactError, match="KNeighborsClassifier"):
        artifacts.load(payload, "item")


def test_a_pipeline_holding_a_type_off_the_list_is_not_written(item: ItemClassifier) -> None:
    tampered = copy.deepcopy(item.pipeline)
    tampered.named_steps["features"].hook_ = os.system
    with pytest.raises(ArtifactError, match=r"posix\.system"):
        artifacts.dump(tampered)


def _rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, replace.get(name, source.read(name)))
    return out.getvalue()


def _first_array(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return next(n for n in archive.namelist() if n.endswith(".npy"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"", "not a skops artifact"),
        (lambda data: b"\x00garbage" * 10, "not a skops artifact"),
        (lambda data: data[: len(data) // 2], "corrupt"),
        (lambda data: _rezip(data, {"schema.json": b"{not json"}), "corrupt"),
        (lambda data: _rezip(data, {"schema.json": b"[]"}), "corrupt"),
        (lambda data: _rezip(data, {_first_array(data): b"\x93NUMPY garbage"}), "corrupt"),
    ],
    ids=["empty", "garbage", "truncated", "schema-not-json", "schema-not-object", "bad-array"],
)
def test_a_damaged_artifact_is_an_artifact_error(
    pair: PairRanker, damage: Any, message: str
) -> None:
    with pytest.raises(ArtifactError, match=message):
        PairRanker.from_bytes(damage(pair.to_bytes()), pair.version, {})


def test_an_archive_without_its_schema_is_an_artifact_error(pair: PairRanker) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("other.txt", b"hello")
    with pytest.raises(ArtifactError, match="corrupt"):
        PairRanker.from_bytes(out.getvalue(), pair.version, {})


def test_an_archive_that_would_unpack_too_large_is_refused(
    pair: PairRanker, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = pair.to_bytes()
    monkeypatch.setattr(artifacts, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(ArtifactError, match="unpack"):
        artifacts.load(data, "pair")
