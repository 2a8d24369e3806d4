"""Activating and rolling back models, shared by `tracker models ...` and the Models page and
API. The champion/challenger rule of training holds here too: a challenger that scored below
the champion it was validated against is not activated by hand either. Nor is a version whose
artifact a worker could not load (a legacy pickle, a damaged or tampered file): it is loaded
here first, as a worker would load it, so the model that is active stays active. Only then is
scikit-learn imported: the web process and the CLI otherwise only move the `active` flag."""

import psycopg

from tracker.storage import audit, models

KINDS = ("item", "pair")


class ActivationRefused(Exception):
    """Why a version may not become active, in words for the user."""


def lost_challenge(model: models.ModelInfo) -> str | None:
    """Why the model lost its challenge at training time, or None (won, or never challenged)."""
    for key, champion in model.metadata.items():
        if not key.startswith("champion_") or not isinstance(champion, int | float):
            continue
        metric = key.removeprefix("champion_")
        score = model.metadata.get("challenger_" + metric)
        if isinstance(score, int | float) and score < champion:
            return (
                f"{model.version} scored {metric} {score:.4f} on validation, below the "
                f"{champion:.4f} of the champion it was trained to replace; it stays inactive"
            )
    return None


def unloadable(conn: psycopg.Connection, version: str) -> str | None:
    """Why the artifact of `version` may not be loaded, or None when it loads."""
    from classifiers import artifacts  # scikit-learn and skops: about 2 s to import

    stored = models.stored(conn, version)
    if stored is None:
        return f"no model version {version!r}"
    try:
        artifacts.load(stored.artifact, stored.kind)
    except artifacts.ArtifactError as exc:
        return f"the artifact of {version} cannot be loaded ({exc}); it stays inactive"
    return None


def activate(conn: psycopg.Connection, version: str, actor: str) -> str:
    """Make `version` the active model of its kind; returns the kind. ActivationRefused when
    the version is unknown, lost its challenge, or its artifact may not be loaded."""
    model = models.info_by_version(conn, version)
    if model is None:
        raise ActivationRefused(f"no model version {version!r}")
    problem = lost_challenge(model) or unloadable(conn, version)
    if problem is not None:
        raise ActivationRefused(problem)
    with conn.transaction():
        models.activate(conn, version)
        audit.record(conn, actor, "model.activate", version)
    return model.kind


def rollback(conn: psycopg.Connection, kind: str, actor: str) -> str:
    """Reactivate the model of `kind` that was active before the current one; its version."""
    if kind not in KINDS:
        raise ActivationRefused("kind must be item or pair")
    version = models.previously_active(conn, kind)
    if version is None:
        raise ActivationRefused(f"no earlier {kind} model to roll back to")
    # Once active, a version passed the rule (or an operator chose it): that is not checked
    # again. Its artifact is: a legacy pickle was active once, and is never loaded.
    problem = unloadable(conn, version)
    if problem is not None:
        raise ActivationRefused(f"cannot roll back: {problem}")
    with conn.transaction():
        models.activate(conn, version)
        audit.record(conn, actor, "model.rollback", version)
    return version
