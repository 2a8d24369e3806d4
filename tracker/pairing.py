"""Pairing stage: match each new rumour with clarifications (and each clarification with
rumours), and group near-duplicate rumours from different outlets into one story."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from classifiers.pair_scorer import LexicalPairScorer, query_terms
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
            if label == "rumour":
                _join_story(conn, row, config)
                created += _pair(conn, row, "clarification", scorer, config)
            elif label == "clarification":
                created += _pair(conn, row, "rumour", scorer, config)
        created += pairs.spread_to_stories(conn, item_ids)
    return created


def _pair(
    conn: psycopg.Connection,
    row: ItemForModel,
    other_label: str,
    scorer: PairScorer,
    config: PairingConfig,
) -> int:
    found = _scored_candidates(conn, row, other_label, scorer, config)
    created = 0
    for candidate, score in found:
        if score.score < config.suggest_threshold:
            continue
        rumour, clarification = (
            (row, candidate) if other_label == "clarification" else (candidate, row)
        )
        explanation = {"shared_terms": list(score.shared_terms[:20])}
        status = "confirmed" if score.score >= config.autoconfirm_threshold else "suggested"
        created += pairs.upsert(
            conn, rumour.id, clarification.id, score.score, explanation, scorer.version, status
        )
    return created


def _join_story(conn: psycopg.Connection, row: ItemForModel, config: PairingConfig) -> None:
    """Put a rumour in the story of its nearest near-duplicate from another outlet."""
    items.lock_stories(conn)
    current = items.for_model(conn, [row.id])
    if not current or current[0].story_id is not None:
        return
    found = [
        (c, s)
        for c, s in _scored_candidates(conn, row, "rumour", STORY_SCORER, config)
        if c.feed_id != row.feed_id and s.score >= config.story_threshold
    ]
    if not found:
        return
    nearest, _score = max(found, key=lambda cs: cs[1].score)
    story_id = nearest.story_id or items.create_story(
        conn, nearest.title, min(nearest.seen_at, row.seen_at)
    )
    items.set_story(conn, [nearest.id, row.id], story_id)


def _scored_candidates(
    conn: psycopg.Connection,
    row: ItemForModel,
    label: str,
    scorer: PairScorer,
    config: PairingConfig,
) -> list[tuple[ItemForModel, PairScore]]:
    text = to_model_text(row)
    found = items.candidates(
        conn,
        query_terms=query_terms(text),
        label=label,
        model_version=config.model_version,
        around=row.seen_at,
        window_days=config.window_days,
        exclude_id=row.id,
    )
    # Candidates labelled rumour mean the query is the clarification, except for stories.
    query_is_rumour = label == "clarification" or scorer is STORY_SCORER
    scores = scorer.score_many(text, [to_model_text(c) for c in found], query_is_rumour)
    return list(zip(found, scores, strict=True))
