"""Which models the pipeline uses: the active item classifier and pair re-ranker from
PostgreSQL, the shipped bundle's (classifiers/bundle.py) at first start, cached per process and
reloaded when the active version changes."""

import threading
from typing import Any, Protocol, TypeVar

import psycopg
import structlog

from classifiers import bundle
from classifiers.artifacts import ArtifactError, LegacyArtifact
from classifiers.item_model import ItemClassifier
from classifiers.pair_model import PairRanker
from tracker.storage import models

log = structlog.get_logger(__name__)


class Artifact(Protocol):
    version: str
    metadata: dict[str, Any]

    def to_bytes(self) -> bytes: ...


Model = TypeVar("Model", ItemClassifier, PairRanker)

_lock = threading.Lock()
_loaded: dict[str, Any] = {}
# The active artifact this process found unusable, by kind: (version, why). A version's
# artifact never changes, so it is not loaded again on every task.
_refused: dict[str, tuple[str, str]] = {}


def _shipped(kind: str) -> Artifact:
    shipped = bundle.load()
    model: Artifact = shipped.item if kind == "item" else shipped.pair
    return model


def ensure_model(conn: psycopg.Connection, kind: str) -> str:
    """Activate the shipped bundle's model of this kind when none is active; returns the
    active version. A missing or altered bundle is an ArtifactError: a broken install must
    not quietly run on lesser models."""
    with conn.transaction():
        # Two processes starting at once must not both store it: the second waits, then finds it.
        models.lock_training(conn)
        version = models.active_version(conn, kind)
        if version is not None:
            return version
        model = _shipped(kind)
        models.store_and_activate(conn, kind, model.version, model.to_bytes(), model.metadata)
        log.info("activated the shipped model", kind=kind, version=model.version)
        return model.version


def ensure_models(conn: psycopg.Connection) -> None:
    for kind in ("item", "pair"):
        ensure_model(conn, kind)


def _active(conn: psycopg.Connection, kind: str, cls: type[Model]) -> Model:
    """The active model of `kind`. When its artifact may not be loaded, the model this process
    had loaded before stays in use; with none, ArtifactError says why."""
    version = models.active_version(conn, kind) or ensure_model(conn, kind)
    with _lock:
        model: Model | None = _loaded.get(kind)
        if model is not None and model.version == version:
            return model
        try:
            model = _load_active(conn, kind, cls, model.version if model else None)
        except ArtifactError:
            if model is None:
                raise
            return model
        _loaded[kind] = model
        return model


def _load_active(conn: psycopg.Connection, kind: str, cls: type[Model], kept: str | None) -> Model:
    stored = models.active(conn, kind)
    if stored is None:  # retired or replaced since its version was read
        ensure_model(conn, kind)
        stored = models.active(conn, kind)
        assert stored is not None
    refused = _refused.get(kind)
    if refused is not None and refused[0] == stored.version:
        raise ArtifactError(refused[1])  # logged when first refused; not loaded again
    try:
        return cls.from_bytes(stored.artifact, stored.version, stored.metadata)
    except LegacyArtifact:
        _replace_legacy(conn, stored)
        fresh = models.active(conn, kind)
        assert fresh is not None
        return cls.from_bytes(fresh.artifact, fresh.version, fresh.metadata)
    except ArtifactError as exc:
        message = (
            f"the active {kind} model {stored.version} cannot be loaded: {exc}; activate "
            "another version (`tracker models activate` or `tracker models rollback`)"
        )
        log.error(
            "active model refused",
            kind=kind,
            version=stored.version,
            error=str(exc),
            keeping=kept or "none: the tasks that need it fail",
        )
        _refused[kind] = (stored.version, message)
        raise ArtifactError(message) from exc


def _replace_legacy(conn: psycopg.Connection, stored: models.StoredModel) -> None:
    """Databases from before skops hold pickled (joblib) models, and a pickle is never loaded:
    loading one can run any code. So a pickled active model counts as no usable model: it is
    retired (its row stays, for the record; activating it again is refused) and the first-start
    path puts a fresh model in its place, in one transaction: if that fails, nothing changed."""
    log.warning(
        "the active model is a pickle from before skops and is never loaded; replacing it",
        kind=stored.kind,
        version=stored.version,
    )
    with conn.transaction():
        models.retire(conn, stored.version)
        ensure_model(conn, stored.kind)


def item_classifier(conn: psycopg.Connection) -> ItemClassifier:
    """The active classifier, loaded once per process and again when the active one changes."""
    return _active(conn, "item", ItemClassifier)


def pair_scorer(conn: psycopg.Connection) -> PairRanker:
    """The active pair re-ranker, loaded like the classifier."""
    return _active(conn, "pair", PairRanker)


def active_model(conn: psycopg.Connection, kind: str) -> ItemClassifier | PairRanker:
    """The active model of a kind by name (`item` or `pair`), for evaluations."""
    return item_classifier(conn) if kind == "item" else pair_scorer(conn)
