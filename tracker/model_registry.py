"""Which models the pipeline uses: the active item classifier and pair re-ranker from
PostgreSQL, trained from the seed corpus at first start, cached per process and reloaded when
the active version changes."""

import threading
from typing import Any, Protocol, TypeVar

import psycopg
import structlog

from classifiers import item_model, pair_model
from classifiers.item_model import ItemClassifier
from classifiers.pair_model import PairRanker
from classifiers.seed import load_seed, load_seed_pairs
from tracker.storage import models

log = structlog.get_logger(__name__)


class Artifact(Protocol):
    version: str
    metadata: dict[str, Any]

    def to_bytes(self) -> bytes: ...


Model = TypeVar("Model", ItemClassifier, PairRanker)

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def _train_seed(kind: str) -> Artifact:
    if kind == "item":
        return item_model.train(load_seed())
    return pair_model.train(*load_seed_pairs(), {"public_pairs": 0})


def ensure_model(conn: psycopg.Connection, kind: str) -> str:
    """Train and activate the seed model of this kind when none is active; returns the version."""
    with conn.transaction():
        # Two processes starting at once must not both train: the second waits, then finds it.
        models.lock_training(conn)
        version = models.active_version(conn, kind)
        if version is not None:
            return version
        log.info("training the first model from the seed corpus", kind=kind)
        model = _train_seed(kind)
        models.store_and_activate(conn, kind, model.version, model.to_bytes(), model.metadata)
        log.info("model ready", kind=kind, version=model.version)
        return model.version


def ensure_models(conn: psycopg.Connection) -> None:
    for kind in ("item", "pair"):
        ensure_model(conn, kind)


def _active(conn: psycopg.Connection, kind: str, cls: type[Model]) -> Model:
    version = models.active_version(conn, kind) or ensure_model(conn, kind)
    with _lock:
        cached = _loaded.get(kind)
        if cached is None or cached.version != version:
            stored = models.active(conn, kind)
            assert stored is not None
            cached = cls.from_bytes(stored.artifact, stored.version, stored.metadata)
            _loaded[kind] = cached
        model: Model = cached
        return model


def item_classifier(conn: psycopg.Connection) -> ItemClassifier:
    """The active classifier, loaded once per process and again when the active one changes."""
    return _active(conn, "item", ItemClassifier)


def pair_scorer(conn: psycopg.Connection) -> PairRanker:
    """The active pair re-ranker, loaded like the classifier."""
    return _active(conn, "pair", PairRanker)
