"""Which models the pipeline uses: the active item classifier from PostgreSQL, trained from the
seed corpus at first start, cached per process and reloaded when the active version changes."""

import threading

import psycopg
import structlog

from classifiers.item_model import ItemClassifier, train
from classifiers.pair_scorer import LexicalPairScorer
from classifiers.seed import load_seed
from tracker.storage import models

log = structlog.get_logger(__name__)

_lock = threading.Lock()
_loaded: list[ItemClassifier] = []


def ensure_item_model(conn: psycopg.Connection) -> str:
    """Train and activate the seed model when no item model is active; returns the version."""
    with conn.transaction():
        # Two processes starting at once must not both train: the second waits, then finds it.
        models.lock_training(conn)
        version = models.active_version(conn, "item")
        if version is not None:
            return version
        log.info("training the first item classifier from the seed corpus")
        model = train(load_seed())
        models.store_and_activate(conn, "item", model.version, model.to_bytes(), model.metadata)
        log.info("item classifier ready", version=model.version, **model.metadata)
        return model.version


def item_classifier(conn: psycopg.Connection) -> ItemClassifier:
    """The active classifier, loaded once per process and again when the active one changes."""
    version = models.active_version(conn, "item") or ensure_item_model(conn)
    with _lock:
        if not _loaded or _loaded[0].version != version:
            stored = models.active(conn, "item")
            assert stored is not None
            _loaded[:] = [
                ItemClassifier.from_bytes(stored.artifact, stored.version, stored.metadata)
            ]
        return _loaded[0]


def pair_scorer() -> LexicalPairScorer:
    return LexicalPairScorer()
