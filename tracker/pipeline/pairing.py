"""Pairing stage: match each new rumour with clarifications (and each clarification with
rumours), and group near-duplicate rumours from different outlets into one story."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import psycopg

from classifiers import embedder, pair_candidates
from classifiers.pair_scorer import LexicalPairScorer, query_terms
from tracker import metrics
from tracker.config import Settings
from tracker.domain import PairScore, TextForModel
from tracker.pipeline import alert_fanout, terms
from tracker.pipeline.classify import to_model_text
from tracker.storage import claim_candidates, classifications, items, pairs, vectors
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
    # Clarifications of these feed kinds stay matchable this many days (the archive).
    archive_days: tuple[tuple[str, int], ...] = ()


def config_for(settings: Settings, model_version: str) -> PairingConfig:
    return PairingConfig(
        model_version=model_version,
        window_days=settings.pair_window_days,
        suggest_threshold=settings.pair_suggest_threshold,
        autoconfirm_threshold=settings.pair_autoconfirm_threshold,
        story_threshold=settings.story_threshold,
        archive_days=tuple(sorted(settings.pair_archive_days.items())),
    )


STORY_SCORER = LexicalPairScorer()
OTHER_LABEL = {"rumour": "clarification", "clarification": "rumour"}
# Candidates scored per item: for pairing, and near-duplicate rumours for its story. Scoring
# is most of the time of pairing an item, and the same event's items rank near the top
# (`same_event_recall` of `tracker bench pairing`).
PAIR_CANDIDATES = 30
STORY_CANDIDATES = 30
# Clarifications from the archive, outside the window, scored beside the window's.
ARCHIVE_CANDIDATES = 20
# The nearest items of the other role in meaning (sentence vectors), beside those found by
# words: a quote in Russian shares no word with its English debunk. As many as the evaluation
# brings (classifiers/pair_candidates.py).
MEANING_CANDIDATES = pair_candidates.MEANING_CANDIDATES
# The cosine from which a rumour in another language is a copy of one already seen. On
# voxcheck_xling dev, a quote and its translation: 80% of English-Russian and 59% of
# English-Ukrainian pairs at or above 0.90; quotes of different fakes: 3 in 10,000 and 1 in
# 10,000 (the cosines of this encoder crowd between 0.75 and 0.95).
STORY_TRANSLATION_COSINE = 0.90
# A clarification's best claims, scored again each among its own candidates: a fact-check
# answers a few claims, and each costs a claim's scoring (its candidates are read back by id:
# Compared).
RESCORED_CLAIMS = 3


@dataclass
class Compared:
    """What claims were compared with in a batch, to keep (storage.claim_candidates): their own
    search, and the clarifications that scored them again."""

    ids: dict[int, list[int]] = field(default_factory=dict)

    def add(self, claim_id: int, candidate_ids: Sequence[int]) -> None:
        kept = self.ids.setdefault(claim_id, [])
        kept += [c for c in candidate_ids if c not in kept]

    def store(self, conn: psycopg.Connection, model_version: str) -> None:
        claim_candidates.extend(conn, model_version, self.ids)


def pair_items(
    conn: psycopg.Connection,
    item_ids: Sequence[int],
    scorer: PairScorer,
    config: PairingConfig,
) -> int:
    """Suggest pairs for the given items; returns how many new pairs were stored. Each item
    is searched as its pairing role (domain.pairing_role) says; only the classifier's rumours
    join stories."""
    new: list[pairs.NewPair] = []
    stories: list[tuple[ItemForModel, list[ItemForModel]]] = []
    compared = Compared()
    with conn.transaction():
        # Reads and scoring first, writing nothing: see _store for why.
        roles = classifications.roles(conn, config.model_version, item_ids)
        for row in items.for_model(conn, item_ids):
            if row.id not in roles:
                continue
            role, label = roles[row.id]
            story = joins_stories(row, role, label)
            found = retrieve(conn, row, role, config, with_story=story)
            if story and (copies := _copies(row, found["rumour"], config)):
                stories.append((row, copies))
            found_pairs = _pair(row, role, found[OTHER_LABEL[role]], scorer, config)
            if role == "rumour":
                compared.add(row.id, [c.id for c in found["clarification"]])
            else:
                found_pairs = _as_the_claims_see_it(
                    conn, row, found_pairs, scorer, config, compared
                )
            new += found_pairs
        created = _store(conn, item_ids, stories, new, compared, scorer.version, config)
    metrics.pairs_suggested(created)
    return created


def _store(
    conn: psycopg.Connection,
    item_ids: Sequence[int],
    stories: Sequence[tuple[ItemForModel, list[ItemForModel]]],
    new: Sequence[pairs.NewPair],
    compared: Compared,
    scorer_version: str,
    config: PairingConfig,
) -> int:
    """Every write of the batch, under the story lock taken before the first of them.

    Concurrent batches write the same rows: a rumour and a clarification in two batches find
    each other, both insert the pair, and the second insert waits until the first batch's
    transaction ends (the pairs' unique index; the outbox's dedupe keys alike). Writing while
    searching, with the lock taken at the first story joined, batch A inserted pair X, then
    waited for the lock held by B, which waited to insert X; or A inserted X then Y while B
    inserted Y then X: DeadlockDetected, and the items waited for the sweeper (issue 17).
    Behind one lock taken first, no batch waits while holding a row another one needs. The
    searching and scoring, most of the time, still run in parallel."""
    items.lock_stories(conn)
    for row, copies in stories:
        _join_story(conn, row, copies)
    created = store(conn, new, scorer_version) + spread_to_stories(conn, item_ids)
    compared.store(conn, config.model_version)
    # In the same transaction: the sweeper re-queues exactly the items this never reached.
    classifications.mark_paired(conn, config.model_version, item_ids)
    return created


def store(conn: psycopg.Connection, new: Sequence[pairs.NewPair], scorer_version: str) -> int:
    """Store new pairs and alert the followers of their rumours' stories, in the caller's
    transaction; returns how many pairs were new."""
    added = pairs.upsert_many(conn, new, scorer_version)
    for status, event in (
        ("suggested", alert_fanout.SUGGESTED),
        ("confirmed", alert_fanout.CONFIRMED),
    ):
        alert_fanout.pairs(conn, [a.id for a in added if a.status == status], event)
    return len(added)


def spread_to_stories(conn: psycopg.Connection, item_ids: Sequence[int]) -> int:
    """Offer each clarification of a story to every outlet of it (storage.pairs
    .spread_to_stories), alerting followers; returns how many pairs were added."""
    added = pairs.spread_to_stories(conn, item_ids)
    alert_fanout.pairs(conn, added, alert_fanout.SUGGESTED)
    return len(added)


def retrieve(
    conn: psycopg.Connection,
    row: ItemForModel,
    role: str,
    config: PairingConfig,
    with_story: bool = False,
) -> dict[str, list[ItemForModel]]:
    """Candidates of the other role and, for a claim `with_story`, near-duplicate claims, in
    one query; for a claim also the archive's clarifications."""
    text = to_model_text(row)
    words = query_terms(text)
    match = terms.distinctive(words, terms.frequencies(conn))
    limits = {OTHER_LABEL[role]: PAIR_CANDIDATES}
    if with_story:
        limits["rumour"] = STORY_CANDIDATES
    # An item published long before it reached us (an archived fact-check fetched today, a
    # claim dated years back) meets both the items of its own time and those arriving now.
    now = datetime.now(UTC)
    old = now - row.seen_at > timedelta(days=config.window_days)
    arounds = [row.seen_at, now] if old else [row.seen_at]
    found = pairs.candidates(
        conn,
        match_terms=match,
        rank_terms=words,
        limits=limits,
        model_version=config.model_version,
        arounds=arounds,
        window_days=config.window_days,
        exclude_id=row.id,
    )
    vector = embedder.vector_of(text)
    for label in limits:
        found[label] += _unseen(
            found[label],
            vectors.nearest(
                conn,
                vector=vector,
                label=label,
                limit=MEANING_CANDIDATES,
                model_version=config.model_version,
                arounds=arounds,
                window_days=config.window_days,
                archive_days=config.archive_days if label == "clarification" else (),
                exclude_id=row.id,
            ),
        )
    if role == "rumour":
        found["clarification"] += _unseen(
            found["clarification"],
            pairs.archived_clarifications(
                conn,
                match_terms=match,
                rank_terms=words,
                archive_days=config.archive_days,
                model_version=config.model_version,
                around=row.seen_at,
                window_days=config.window_days,
                exclude_id=row.id,
                limit=ARCHIVE_CANDIDATES,
            ),
        )
    return found


def _unseen(found: list[ItemForModel], more: list[ItemForModel]) -> list[ItemForModel]:
    seen = {c.id for c in found}
    return [c for c in more if c.id not in seen]


def _pair(
    row: ItemForModel,
    role: str,
    found: list[ItemForModel],
    scorer: PairScorer,
    config: PairingConfig,
) -> list[pairs.NewPair]:
    new = []
    for candidate, score in score_candidates(row, role == "rumour", found, scorer):
        if score.score < config.suggest_threshold:
            continue
        rumour, clarification = (row, candidate) if role == "rumour" else (candidate, row)
        status = "confirmed" if score.score >= config.autoconfirm_threshold else "suggested"
        explanation = {"shared_terms": list(score.shared_terms[:20])}
        new.append(pairs.NewPair(rumour.id, clarification.id, score.score, explanation, status))
    return new


def _as_the_claims_see_it(
    conn: psycopg.Connection,
    row: ItemForModel,
    found: list[pairs.NewPair],
    scorer: PairScorer,
    config: PairingConfig,
    compared: Compared,
) -> list[pairs.NewPair]:
    """A clarification's pairs scored again from each claim's side, among that claim's own
    candidates. The re-ranker reads a score against the other candidates of the query, so a
    claim's pairs are all scored as its own query, whichever of the two came first: its best
    pair is then the best of one comparison (`tracker bench replay`: with scores from both
    sides, a claim's best pair was its fact-check less often). Only the best RESCORED_CLAIMS
    are kept: the rest of a wave of copies is reached through their story.

    A claim's candidates are those it was compared with before, the clarifications that
    scored it since among them; a claim without them (paired before 0021) is searched for."""
    claim_ids = _best_claims(found)
    remembered = claim_candidates.of(conn, config.model_version, claim_ids)
    kept: list[pairs.NewPair] = []
    for claim in items.for_model(conn, claim_ids):
        if claim.id in remembered:
            candidates = claim_candidates.clarifications(
                conn, config.model_version, remembered[claim.id]
            )
        else:
            candidates = retrieve(conn, claim, "rumour", config)["clarification"]
        if row.id not in {c.id for c in candidates}:
            candidates.append(row)
        compared.add(claim.id, [c.id for c in candidates])
        kept += [
            p
            for p in _pair(claim, "rumour", candidates, scorer, config)
            if p.clarification_id == row.id
        ]
    return kept


def _best_claims(found: list[pairs.NewPair]) -> list[int]:
    return [p.rumour_id for p in sorted(found, key=lambda p: -p.score)[:RESCORED_CLAIMS]]


def remember_searches(
    conn: psycopg.Connection, claim_ids: Sequence[int], config: PairingConfig
) -> int:
    """Keep, for each claim that has none kept, what its search finds now, as its own pairing
    keeps it: for claims stored another way (`tracker bench pairing` loads them with COPY).
    Returns how many claims were searched."""
    kept = claim_candidates.of(conn, config.model_version, claim_ids)
    compared = Compared()
    for claim in items.for_model(conn, [c for c in claim_ids if c not in kept]):
        found = retrieve(conn, claim, "rumour", config)["clarification"]
        compared.add(claim.id, [c.id for c in found])
    compared.store(conn, config.model_version)
    return len(compared.ids)


def joins_stories(row: ItemForModel, role: str, label: str) -> bool:
    """Whether pairing looks for the item's copies: only for the classifier's rumours not yet in
    a story. Claims it labels otherwise (most real claims) skip the search for near-duplicate
    claims: at a million items, a vector search of 20 ms."""
    return role == label == "rumour" and row.story_id is None


def _copies(
    row: ItemForModel, found: list[ItemForModel], config: PairingConfig
) -> list[ItemForModel]:
    """Copies from other outlets of a rumour not yet in a story: its nearest near-duplicate by
    words, then its copies in another language by meaning, nearest first (they share few
    words). Only the nearest by words: other candidates above the threshold may be another
    event told in the same template."""
    others = [c for c in found if c.feed_id != row.feed_id]
    by_words = [
        (c, s.score)
        for c, s in score_candidates(row, True, others, STORY_SCORER)
        if s.score >= config.story_threshold
    ]
    translated = [c for c in others if c.language != row.language]
    meaning = embedder.vectors([to_model_text(c) for c in translated])
    mine = embedder.vector_of(to_model_text(row))
    by_meaning = [
        (c, float(cosine))
        for c, cosine in zip(translated, meaning @ mine, strict=True)
        if cosine >= STORY_TRANSLATION_COSINE
    ]
    near = sorted(by_words, key=lambda cs: -cs[1])[:1] + sorted(by_meaning, key=lambda cs: -cs[1])
    return list({c.id: c for c, _ in near}.values())


def _join_story(conn: psycopg.Connection, row: ItemForModel, copies: list[ItemForModel]) -> None:
    """Put a rumour in the story of the nearest of its copies that has one, or start one with
    the nearest; call under lock_stories. A story so reaches across languages even when each
    language's copies found each other first."""
    # Read again under the lock: another worker may have put them in stories meanwhile.
    current = {r.id: r for r in items.for_model(conn, [row.id, *(c.id for c in copies)])}
    if row.id not in current or current[row.id].story_id is not None:
        return
    copies = [current[c.id] for c in copies if c.id in current]
    if not copies:
        return
    nearest = next((c for c in copies if c.story_id is not None), copies[0])
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
