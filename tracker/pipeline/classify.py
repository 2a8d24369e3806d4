"""Classification stage: label new items, in the context of similar earlier items, and queue
rumour alerts in the same transaction."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import psycopg

from classifiers import context, embedder
from classifiers.pair_scorer import query_terms
from tracker import metrics
from tracker.domain import DEFAULT_CLAIM_MIN_RUMOUR, Prediction, TextForModel, pairing_role
from tracker.pipeline import alert_fanout, terms
from tracker.pipeline.model_registry import item_classifier
from tracker.storage import classifications, items, models, vectors

# Stalls older than this are left alone: it bounds the sweep's scan, and work lost that long ago
# (a model switch, a restore from backup) is for an operator to look at, not for a timer.
SWEEP_LOOKBACK_S = 2 * 86400
# Earlier items fetched per new item: more than the neighbours the blend keeps, because the
# search ranks by shared words and the blend by TF-IDF cosine.
CONTEXT_CANDIDATES = 2 * context.NEIGHBOURS


def classify_items(
    conn: psycopg.Connection,
    item_ids: Sequence[int],
    alert_min_probability: float,
    public_url: str | None,
    claim_min_rumour: float = DEFAULT_CLAIM_MIN_RUMOUR,
) -> list[int]:
    """Classify items not yet classified by the active model, and enter those pairing will
    search into its table with their role (domain.pairing_role); returns the ids classified
    now."""
    started = time.perf_counter()
    model = item_classifier(conn)
    with conn.transaction():
        rows = items.for_model(conn, item_ids)
        # Embedded once, here: the item model reads the vector, and pairing searches the
        # vectors of the items it is given a role for, stored beside their terms (0018).
        texts = embedded([to_model_text(r) for r in rows])
        predictions = in_context(conn, rows, texts, model.predict(texts))
        roles = [
            pairing_role(r.feed_kind, p, claim_min_rumour)
            for r, p in zip(rows, predictions, strict=True)
        ]
        stored = classifications.insert(
            conn,
            model.version,
            [(r.id, p, role) for r, p, role in zip(rows, predictions, roles, strict=True)],
        )
        new = set(stored)
        searched = {
            r.id: t.embedding
            for r, t, role in zip(rows, texts, roles, strict=True)
            if r.id in new and role and t.embedding is not None
        }
        vectors.store(conn, model.version, searched)
        rumours = [
            (r, p)
            for r, p in zip(rows, predictions, strict=True)
            if r.id in new and p.label == "rumour" and p.probability >= alert_min_probability
        ]
        alert_fanout.rumours(conn, rumours, public_url)
    metrics.batch_classified(time.perf_counter() - started, len(stored))
    return stored


def embedded(texts: Sequence[TextForModel]) -> list[TextForModel]:
    """The texts with their vectors: those stored, the others computed now, in batches."""
    found = embedder.completed(texts)
    return [replace(t, embedding=v) for t, v in zip(texts, found, strict=True)]


def in_context(
    conn: psycopg.Connection,
    rows: Sequence[items.ItemForModel],
    texts: Sequence[TextForModel],
    predictions: Sequence[Prediction],
) -> list[Prediction]:
    """The model's predictions moved towards those stored for similar earlier items."""
    frequencies = terms.frequencies(conn)
    queries = [
        classifications.ContextQuery(
            r.id, terms.distinctive(query_terms(t), frequencies), r.language, r.seen_at
        )
        for r, t in zip(rows, texts, strict=True)
    ]
    found = classifications.context(
        conn, queries, context.WINDOW.total_seconds(), CONTEXT_CANDIDATES
    )
    earlier = [context.Earlier(to_model_text(row), p) for row, p in found]
    return context.with_context(texts, predictions, earlier)


def to_model_text(row: items.ItemForModel) -> TextForModel:
    return TextForModel(
        title=row.title,
        summary=row.summary,
        feed_kind=row.feed_kind,
        language=row.language,
        seen_at=row.seen_at,
        author=row.author,
        embedding=embedder.UNKNOWN
        if row.embedding is None
        else np.asarray(row.embedding, np.float32),
    )


@dataclass(frozen=True)
class Stalled:
    unclassified: list[int]
    unpaired: list[int]


def stalled(conn: psycopg.Connection, grace_s: float, limit: int) -> Stalled:
    """Items whose classify or pair message was lost (a killed worker, a broker or database
    outage): stored but never classified, or classified but never paired, after `grace_s`."""
    active = models.active_since(conn, "item")
    if active is None:
        return Stalled([], [])
    version, since = active
    return Stalled(
        unclassified=items.unclassified(conn, version, since, grace_s, SWEEP_LOOKBACK_S, limit),
        unpaired=classifications.unpaired(conn, version, grace_s, SWEEP_LOOKBACK_S, limit),
    )
