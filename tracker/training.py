"""Training stage: build a challenger from the seed corpus, analysts' decisions and any public
data given, compare it with the active champion on validation data neither was trained on, and
activate it only if it is not worse."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import psycopg
import structlog

from classifiers import item_model, pair_model
from classifiers.artifacts import ArtifactError
from classifiers.item_model import ItemClassifier, LabelledText
from classifiers.pair_model import PairExample, PairRanker
from classifiers.seed import load_seed, load_seed_pairs
from tracker.classify import to_model_text
from tracker.storage import items, labels, models

log = structlog.get_logger(__name__)

Progress = Callable[[str], None]
ITEM_METRIC = "macro_f1"
PAIR_METRIC = "map@5"
Model = TypeVar("Model", ItemClassifier, PairRanker)


@dataclass(frozen=True)
class Outcome:
    kind: str
    version: str
    metric: str
    challenger: float
    champion: float | None
    activated: bool
    validated_on: int


def analyst_examples(conn: psycopg.Connection) -> list[LabelledText]:
    given = labels.item_labels(conn)
    rows = items.for_model(conn, list(given))
    return [LabelledText(to_model_text(row), given[row.id]) for row in rows]


def analyst_pairs(
    conn: psycopg.Connection, first_group: int
) -> tuple[list[PairExample], list[bool]]:
    """Decided pairs grouped by rumour, so a rejected pair competes with a confirmed one."""
    decisions = labels.pair_decisions(conn)
    rows = {r.id: r for r in items.for_model(conn, [i for d in decisions for i in d[:2]])}
    groups: dict[int, int] = {}
    pairs, verdicts = [], []
    for rumour_id, clarification_id, confirmed in decisions:
        if rumour_id in rows and clarification_id in rows:
            group = groups.setdefault(rumour_id, first_group + len(groups))
            pairs.append(
                PairExample(
                    to_model_text(rows[rumour_id]), to_model_text(rows[clarification_id]), group
                )
            )
            verdicts.append(confirmed)
    return pairs, verdicts


def train_item_model(
    conn: psycopg.Connection, extra: Sequence[LabelledText], progress: Progress
) -> Outcome:
    examples = [*load_seed(), *extra, *analyst_examples(conn)]
    progress(f"training the item classifier on {len(examples)} examples")
    challenger = item_model.train(examples, {"public_examples": len(extra)})
    return challenge_item(conn, challenger, item_model.validation_part(examples), progress)


def challenge_item(
    conn: psycopg.Connection,
    challenger: ItemClassifier,
    validation: Sequence[LabelledText],
    progress: Progress,
) -> Outcome:
    """Store the challenger; activate it unless the active model scores better on `validation`."""
    old = _champion(models.active(conn, "item"), ItemClassifier, progress)
    champion = None if old is None else item_model.scores(old, validation)[ITEM_METRIC]
    score = item_model.scores(challenger, validation)[ITEM_METRIC]
    return _decide(conn, "item", challenger, ITEM_METRIC, score, champion, len(validation))


def train_pair_model(
    conn: psycopg.Connection,
    extra: tuple[Sequence[PairExample], Sequence[bool]],
    progress: Progress,
) -> Outcome:
    seed_pairs, seed_labels = load_seed_pairs()
    pairs, verdicts = [*seed_pairs], [*seed_labels]
    for more, more_labels in (extra, analyst_pairs(conn, 0)):
        offset = 1 + max((p.group for p in pairs), default=-1)
        pairs += [PairExample(p.rumour, p.clarification, p.group + offset) for p in more]
        verdicts += list(more_labels)
    progress(f"training the pair re-ranker on {len(pairs)} candidate pairs")
    challenger = pair_model.train(pairs, verdicts, {"public_pairs": len(extra[0])})
    validation = pair_model.validation_part(pairs, verdicts)
    old = _champion(models.active(conn, "pair"), PairRanker, progress)
    champion = None if old is None else pair_model.scores(old, *validation)[PAIR_METRIC]
    score = pair_model.scores(challenger, *validation)[PAIR_METRIC]
    return _decide(conn, "pair", challenger, PAIR_METRIC, score, champion, len(validation[0]))


def _champion(
    stored: models.StoredModel | None, cls: type[Model], progress: Progress
) -> Model | None:
    """The active model, to score on the challenger's validation data; None when there is
    none, or when its artifact may not be loaded (a legacy pickle, a damaged file): no worker
    can use that model, so the challenger replaces it without a contest."""
    if stored is None:
        return None
    try:
        old = cls.from_bytes(stored.artifact, stored.version, stored.metadata)
    except ArtifactError as exc:
        progress(f"the active model {stored.version} cannot be loaded ({exc}); not compared")
        log.warning("champion not loadable", version=stored.version, error=str(exc))
        return None
    progress(f"scoring the active model {stored.version} on the same validation data")
    return old


def retrain(conn: psycopg.Connection, progress: Progress) -> list[Outcome]:
    """Train a challenger of each kind whose active model predates analysts' last decision."""
    last = labels.last_decision_at(conn)
    if last is None:
        return []
    newest: dict[str, datetime] = {}
    for model in models.list_models(conn):
        newest[model.kind] = max(newest.get(model.kind, model.created_at), model.created_at)
    outcomes = []
    # A challenger trained since the last decision, kept or not, already saw everything.
    if newest.get("item", last) <= last:
        outcomes.append(train_item_model(conn, [], progress))
    if newest.get("pair", last) <= last:
        outcomes.append(train_pair_model(conn, ([], []), progress))
    return outcomes


def _decide(
    conn: psycopg.Connection,
    kind: str,
    challenger: ItemClassifier | PairRanker,
    metric: str,
    score: float,
    champion: float | None,
    validated_on: int,
) -> Outcome:
    activated = champion is None or score >= champion
    # Both scores, so activating this version by hand later can respect the same verdict.
    challenger.metadata["champion_" + metric] = champion
    challenger.metadata["challenger_" + metric] = score
    with conn.transaction():
        models.store(conn, kind, challenger.version, challenger.to_bytes(), challenger.metadata)
        if activated:
            models.activate(conn, challenger.version)
    log.info(
        "model trained",
        kind=kind,
        version=challenger.version,
        metric=metric,
        challenger=score,
        champion=champion,
        activated=activated,
    )
    return Outcome(kind, challenger.version, metric, score, champion, activated, validated_on)
