"""Pairing stage: match each new rumour with clarifications (and each clarification with
rumours), and group near-duplicate rumours from different outlets into one story."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from classifiers.pair_scorer import LexicalPairScorer, query_terms
from tracker import metrics, terms
from tracker.classify import to_model_text
from tracker.domain import PairScore, TextForModel
from tracker.storage import classifications, items, pairs
from tracker.storage.items import ItemForModel


class PairScorer(Protocol):
    version: str

    def score_many(
        self, query: TextForModel, candidates: Sequence[TextForModel], query_is_rumour: bool
    ) -> list[PairScore]: ...


@dataclass(frozen=True)
class PairingConfig:
    model_version: str
    window_days: int
    suggest_threshold: float
    # Pairs scoring at least this are confirmed without review; above 1 turns that off.
    autoconfirm_threshold: float
    story_threshold: float


STORY_SCORER = LexicalPairScorer()
OTHER_LABEL = {"rumour": "clarification", "clarification": "rumour"}
# Candidates scored per item: for pairing, and near-duplicate rumours for its story. Scoring
# is most of the time of pairing an item, and the same event's items rank near the top
# (`same_event_recall` of `tracker bench pairing`).
PAIR_CANDIDATES = 30
STORY_CANDIDATES = 30


def pair_items(
    conn: psycopg.Connection,
    item_ids: Sequence[int],
    scorer: PairScorer,
    config: PairingConfig,
) -> int:
    """Suggest pairs for the given items; returns how many new pairs were stored."""
    created = 0
    with conn.transaction():
        labels = classifications.labels(conn, config.model_version, item_ids)
        for row in items.for_model(conn, item_ids):
            label = labels.get(row.id, ("other", 0.0))[0]
            if label not in OTHER_LABEL:
                continue
            found = retrieve(conn, row, label, config)
            if label == "rumour":
                _join_story(conn, row, found["rumour"], config)
            created += _pair(conn, row, label, found[OTHER_LABEL[label]], scorer, config)
        created += pairs.spread_to_stories(conn, item_ids)
        # In the same transaction: the sweeper re-queues exactly the items this never reached.
        classifications.mark_paired(conn, config.model_version, item_ids)
    metrics.pairs_suggested(created)
    return created


def retrieve(
    conn: psycopg.Connection, row: ItemForModel, label: str, config: PairingConfig
) -> dict[str, list[ItemForModel]]:
    """Candidates of the other label and, for a rumour, near-duplicate rumours, in one query."""
    words = query_terms(to_model_text(row))
    limits = {OTHER_LABEL[label]: PAIR_CANDIDATES}
    if label == "rumour":
        limits["rumour"] = STORY_CANDIDATES
    return pairs.candidates(
        conn,
        match_terms=terms.distinctive(words, terms.frequencies(conn)),
        rank_terms=words,
        limits=limits,
        model_version=config.model_version,
        around=row.seen_at,
        window_days=config.window_days,
        exclude_id=row.id,
    )


def _pair(
    conn: psycopg.Connection,
    row: ItemForModel,
    label: str,
    found: list[ItemForModel],
    scorer: PairScorer,
    config: PairingConfig,
) -> int:
    new = []
    for candidate, score in score_candidates(row, label == "rumour", found, scorer):
        if score.score < config.suggest_threshold:
            continue
        rumour, clarification = (row, candidate) if label == "rumour" else (candidate, row)
        status = "confirmed" if score.score >= config.autoconfirm_threshold else "suggested"
        explanation = {"shared_terms": list(score.shared_terms[:20])}
        new.append(pairs.NewPair(rumour.id, clarification.id, score.score, explanation, status))
    return pairs.upsert_many(conn, new, scorer.version)


def _join_story(
    conn: psycopg.Connection, row: ItemForModel, found: list[ItemForModel], config: PairingConfig
) -> None:
    """Put a rumour in the story of its nearest near-duplicate from another outlet."""
    if row.story_id is not None:
        return
    near = [
        (c, s)
        for c, s in score_candidates(row, True, found, STORY_SCORER)
        if c.feed_id != row.feed_id and s.score >= config.story_threshold
    ]
    if not near:
        return
    nearest = max(near, key=lambda cs: cs[1].score)[0]
    items.lock_stories(conn)
    # Read again under the lock: another worker may have put either in a story meanwhile.
    current = {r.id: r for r in items.for_model(conn, [row.id, nearest.id])}
    if row.id not in current or current[row.id].story_id is not None or nearest.id not in current:
        return
    nearest = current[nearest.id]
    story_id = nearest.story_id or items.create_story(
        conn, nearest.title, min(nearest.seen_at, row.seen_at)
    )
    items.set_story(conn, [nearest.id, row.id], story_id)


def score_candidates(
    row: ItemForModel, query_is_rumour: bool, found: list[ItemForModel], scorer: PairScorer
) -> list[tuple[ItemForModel, PairScore]]:
    texts = [to_model_text(c) for c in found]
    scores = scorer.score_many(to_model_text(row), texts, query_is_rumour)
    return list(zip(found, scores, strict=True))
