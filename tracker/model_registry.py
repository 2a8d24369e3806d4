"""Which models the pipeline uses: the active item classifier from PostgreSQL, trained from the
seed corpus at first start, cached per process and reloaded when the active version changes."""

import psycopg
import structlog

from classifiers.item_model import ItemClassifier, train
from classifiers.pair_scorer import LexicalPairScorer
from classifiers.seed import load_seed
from tracker.storage import models

log = structlog.get_logger(__name__)

_cache: dict[str, ItemClassifier] = {}


def ensure_item_model(conn: psycopg.Connection) -> str:
    """Train and activate the seed model when no item model is active; returns the version."""
    with conn.transaction():
        # Two processes starting at once must not both train: the lock makes the second wait.
        conn.execute("SELECT pg_advisory_xact_lock(7263115)")
        version = models.active_version(conn, "item")
        if version is not None:
            return version
        log.info("training the first item classifier from the seed corpus")
        model = train(load_seed())
        models.store_and_activate(conn, "item", model.version, model.to_bytes(), model.metadata)
        log.info("item classifier ready", version=model.version, **model.metadata)
        return model.version


def item_classifier(conn: psycopg.Connection) -> ItemClassifier:
    version = models.active_version(conn, "item") or ensure_item_model(conn)
    if version not in _cache:
        stored = models.active(conn, "item")
        assert stored is not None
        _cache.clear()
        _cache[stored.version] = ItemClassifier.from_bytes(
            stored.artifact, stored.version, stored.metadata
        )
    return _cache[version]


def pair_scorer() -> LexicalPairScorer:
    return LexicalPairScorer()
