"""Training stage: correct the shipped models with analysts' decisions, compare the challenger
with the active champion on validation data neither was trained on, and activate it only if
it is not worse.

Retraining keeps what the public data taught: the base of every challenger is the model of
the shipped bundle (classifiers/bundle.py), trained on PHEME, CheckThat! and the seed corpus,
and the decisions fit a correction of its last layer (classifiers/adapt.py), not a new model.
The item correction is also held to the base's own predictions on the deployment's recent
unlabelled items and the seed corpus, so decisions that are mostly corrections of errors do
not turn every item round. Retraining on public data plus decisions was measured too
(docs/guide.md, "How it works"): it keeps the public knowledge as well and learns faster from
a few hundred item decisions, but it needs the public data, which most deployments do not
have, and pair decisions were lost in its tens of thousands of public pairs.

The validation data is the public validation part (the fifth of the data, chosen by a hash
of the text, that the bundle never trained on; from `TRACKER_PUBLIC_DATA_DIR`, or the public
data `tracker train` was given) plus the decisions in that same hash-chosen fifth, which no
challenger trains on. Without public data the seed corpus's validation part stands in for it,
and the outcome says so: the bundle's recorded validation figures cannot be recomputed.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import structlog

from classifiers import adapt, bundle, item_model, pair_model, recipe
from classifiers.artifacts import ArtifactError
from classifiers.datasets import DatasetError, load_pheme
from classifiers.evaluate import in_validation
from classifiers.item_model import ItemClassifier, LabelledText
from classifiers.pair_model import PairExample, PairRanker
from classifiers.seed import load_seed, load_seed_pairs
from tracker.domain import TextForModel
from tracker.pipeline.classify import to_model_text
from tracker.storage import browse, items, labels, models

log = structlog.get_logger(__name__)

Progress = Callable[[str], None]
ITEM_METRIC = "macro_f1"
PAIR_METRIC = "map@5"
Model = TypeVar("Model", ItemClassifier, PairRanker)
Pairs = tuple[list[PairExample], list[bool]]
# How many of the deployment's newest items hold the item correction to the base.
ANCHOR_ITEMS = 1000
PHEME_FILE = Path("pheme_rnr") / "pheme_source_tweets.jsonl"
CHECKTHAT_DIR = "checkthat2022_2a_en"
NO_PUBLIC_DATA = (
    "no public data (TRACKER_PUBLIC_DATA_DIR): compared on the seed corpus's validation part "
    "and held-out decisions; the bundle's own validation figures cannot be recomputed"
)


@dataclass(frozen=True)
class Outcome:
    kind: str
    version: str
    metric: str
    challenger: float
    champion: float | None
    activated: bool
    validated_on: int
    # What the validation data was, in words (public data, or the seed corpus standing in).
    validation_data: str = ""


def analyst_examples(conn: psycopg.Connection) -> list[LabelledText]:
    given = labels.item_labels(conn)
    rows = items.for_model(conn, list(given))
    return [LabelledText(to_model_text(row), given[row.id]) for row in rows]


def analyst_pairs(conn: psycopg.Connection, first_group: int) -> Pairs:
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


def anchor_texts(conn: psycopg.Connection, limit: int = ANCHOR_ITEMS) -> list[TextForModel]:
    """What the item correction is held to the base's predictions on: the deployment's newest
    items no analyst labelled, and the seed corpus, which every deployment has, so a
    deployment with few items cannot be turned round by its decisions either."""
    labelled = labels.item_labels(conn)
    newest = [row.id for row in browse.list_items(conn, browse.ItemFilter(), limit)]
    rows = items.for_model(conn, [i for i in newest if i not in labelled])
    return [*(to_model_text(row) for row in rows), *(ex.text for ex in load_seed())]


def shipped_models() -> bundle.Bundle:
    """The bundle's models: the base every challenger is a correction of."""
    return bundle.load()


def train_item_model(
    conn: psycopg.Connection,
    extra: Sequence[LabelledText],
    progress: Progress,
    public_dir: Path | None = None,
    shipped: bundle.Bundle | None = None,
) -> Outcome:
    """Correct the shipped classifier with analysts' labels. Public examples in `extra` make
    the base a model trained by the shipped recipe on them and the seed corpus instead."""
    decisions = analyst_examples(conn)
    if extra:
        progress(f"training a base item classifier on {len(extra)} public examples and the seed")
        base = recipe.train_item([*load_seed(), *extra], hold_out=True)
    else:
        base = (shipped or shipped_models()).item
    anchor = anchor_texts(conn)
    progress(
        f"correcting the item classifier {base.version} with {len(decisions)} labelled items, "
        f"held to its predictions on {len(anchor)} others"
    )
    challenger = adapt.adapt_item(base, decisions, {"public_examples": len(extra)}, anchor=anchor)
    public, described = item_public_validation(extra, public_dir)
    held = [ex for ex in decisions if in_validation(item_model.model_document(ex.text))]
    return challenge_item(conn, challenger, public, progress, held, described)


def item_public_validation(
    extra: Sequence[LabelledText], public_dir: Path | None
) -> tuple[list[LabelledText], str]:
    """The public validation part for the item model, and what it is in words."""
    if extra:
        examples = [*load_seed(), *extra]
        return item_model.validation_part(examples), "the public data given and the seed corpus"
    pheme = public_dir / PHEME_FILE if public_dir else None
    if pheme is not None and pheme.is_file():
        try:
            examples = recipe.item_examples(load_pheme(pheme))
            return item_model.validation_part(examples), f"{pheme} and the seed corpus"
        except DatasetError as exc:
            log.warning("public data unreadable", path=str(pheme), error=str(exc))
    return item_model.validation_part(load_seed()), NO_PUBLIC_DATA


def challenge_item(
    conn: psycopg.Connection,
    challenger: ItemClassifier,
    validation: Sequence[LabelledText],
    progress: Progress,
    decisions: Sequence[LabelledText] = (),
    described: str = "",
) -> Outcome:
    """Store the challenger; activate it unless the active model scores better on the
    validation part plus held-out `decisions`, taken together."""
    pooled = [*validation, *decisions]
    old = _champion(models.active(conn, "item"), ItemClassifier, progress)
    champion = None if old is None else item_model.scores(old, pooled)[ITEM_METRIC]
    figures = item_model.scores(challenger, pooled)
    challenger.metadata.update(
        {
            "validation": figures,
            "validation_parts": {
                "public": item_model.scores(challenger, validation),
                "decisions": item_model.scores(challenger, decisions) if decisions else None,
            },
            "pr_curve": item_model.rumour_pr_curve(challenger, pooled),
        }
    )
    parts = _Parts(len(validation), len(decisions), described)
    return _decide(
        conn, "item", challenger, ITEM_METRIC, figures[ITEM_METRIC], champion, parts, progress
    )


def train_pair_model(
    conn: psycopg.Connection,
    sources: Sequence[tuple[Path, str]],
    progress: Progress,
    public_dir: Path | None = None,
    shipped: bundle.Bundle | None = None,
) -> Outcome:
    """Correct the shipped re-ranker with analysts' decided pairs. CheckThat!-format
    `sources` make the base a model trained by the shipped recipe on them and the seed pairs
    instead."""
    public: Pairs | None = None
    if sources:
        public = recipe.pair_examples(sources, progress)
        progress(f"training a base pair re-ranker on {len(public[0])} candidate pairs")
        base = recipe.train_pair(*public, hold_out=True)
    else:
        found = shipped or shipped_models()
        base = found.pair
        public = pair_public_pairs(public_dir, found.manifest, progress)
    described = _described_pairs(sources, public_dir, public)
    if public is None:
        public = load_seed_pairs()
    validation = pair_model.validation_part(*public)
    decided = analyst_pairs(conn, 1 + max((p.group for p in validation[0]), default=-1))
    progress(f"correcting the pair re-ranker {base.version} with {len(decided[0])} decided pairs")
    challenger = adapt.adapt_pair(base, *decided, {"public_pairs": len(public[0])})
    held = pair_model.validation_part(*decided)
    return challenge_pair(conn, challenger, validation, progress, held, described)


def pair_public_pairs(
    public_dir: Path | None, manifest: dict[str, Any], progress: Progress
) -> Pairs | None:
    """The CheckThat! pairs of the splits the bundle was trained on, when the data is here."""
    directory = public_dir / CHECKTHAT_DIR if public_dir else None
    if directory is None or not directory.is_dir():
        return None
    recorded = str(manifest.get("sources", {}).get("checkthat", ""))
    splits = recorded.partition(":")[2].split(",") if ":" in recorded else ["train", "dev"]
    try:
        return recipe.pair_examples([(directory, s) for s in splits if s], progress)
    except DatasetError as exc:
        log.warning("public data unreadable", path=str(directory), error=str(exc))
        return None


def _described_pairs(
    sources: Sequence[tuple[Path, str]], public_dir: Path | None, public: Pairs | None
) -> str:
    if sources:
        return "the public data given and the seed pairs"
    if public is not None and public_dir is not None:
        return f"{public_dir / CHECKTHAT_DIR} and the seed pairs"
    return NO_PUBLIC_DATA


def challenge_pair(
    conn: psycopg.Connection,
    challenger: PairRanker,
    validation: Pairs,
    progress: Progress,
    decisions: Pairs = ([], []),
    described: str = "",
) -> Outcome:
    """As challenge_item, for the re-ranker: ranking quality over the validation part's
    groups and the held-out decisions' groups (their group numbers must not overlap)."""
    pooled = (validation[0] + decisions[0], validation[1] + decisions[1])
    old = _champion(models.active(conn, "pair"), PairRanker, progress)
    champion = None if old is None else pair_model.scores(old, *pooled)[PAIR_METRIC]
    figures = pair_model.scores(challenger, *pooled)
    challenger.metadata.update(
        {
            "validation": figures,
            "validation_parts": {
                "public": pair_model.scores(challenger, *validation),
                "decisions": pair_model.scores(challenger, *decisions) if decisions[0] else None,
            },
            "thresholds": pair_model.thresholds(challenger, *pooled),
            "pr_curve": pair_model.matching_pr_curve(challenger, *pooled),
        }
    )
    parts = _Parts(len(validation[0]), len(decisions[0]), described)
    score = figures[PAIR_METRIC]
    return _decide(conn, "pair", challenger, PAIR_METRIC, score, champion, parts, progress)


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


def retrain(
    conn: psycopg.Connection,
    progress: Progress,
    public_dir: Path | None = None,
    shipped: bundle.Bundle | None = None,
) -> list[Outcome]:
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
        shipped = shipped or shipped_models()
        outcomes.append(train_item_model(conn, [], progress, public_dir, shipped))
    if newest.get("pair", last) <= last:
        shipped = shipped or shipped_models()
        outcomes.append(train_pair_model(conn, [], progress, public_dir, shipped))
    return outcomes


@dataclass(frozen=True)
class _Parts:
    """How many examples (items) or candidate pairs each part of the validation data had."""

    public: int
    decisions: int
    described: str


def _decide(
    conn: psycopg.Connection,
    kind: str,
    challenger: ItemClassifier | PairRanker,
    metric: str,
    score: float,
    champion: float | None,
    parts: _Parts,
    progress: Progress,
) -> Outcome:
    activated = champion is None or score >= champion
    # Both scores, so activating this version by hand later can respect the same verdict.
    challenger.metadata["champion_" + metric] = champion
    challenger.metadata["challenger_" + metric] = score
    described = parts.described or "the validation data given"
    challenger.metadata["validation_data"] = described
    progress(f"validated on {parts.public} public and {parts.decisions} held-out: {described}")
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
        validated_on_public=parts.public,
        validated_on_decisions=parts.decisions,
        validation_data=described,
    )
    validated_on = parts.public + parts.decisions
    return Outcome(
        kind, challenger.version, metric, score, champion, activated, validated_on, described
    )
