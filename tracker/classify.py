"""Classification stage: label new items, and queue rumour alerts in the same transaction."""

import time
from collections.abc import Sequence

import psycopg

from tracker import alerts, metrics
from tracker.domain import TextForModel
from tracker.model_registry import item_classifier
from tracker.storage import classifications, items


def classify_items(
    conn: psycopg.Connection,
    item_ids: Sequence[int],
    alert_min_probability: float,
    public_url: str | None,
) -> list[int]:
    """Classify items not yet classified by the active model; returns the ids classified now."""
    started = time.perf_counter()
    model = item_classifier(conn)
    with conn.transaction():
        rows = items.for_model(conn, item_ids)
        predictions = model.predict([to_model_text(r) for r in rows])
        stored = classifications.insert(
            conn, model.version, [(r.id, p) for r, p in zip(rows, predictions, strict=True)]
        )
        new = set(stored)
        rumours = [
            (r, p)
            for r, p in zip(rows, predictions, strict=True)
            if r.id in new and p.label == "rumour" and p.probability >= alert_min_probability
        ]
        alerts.queue_rumour_alerts(conn, rumours, public_url)
    metrics.batch_classified(time.perf_counter() - started, len(stored))
    return stored


def to_model_text(row: items.ItemForModel) -> TextForModel:
    return TextForModel(
        title=row.title,
        summary=row.summary,
        feed_kind=row.feed_kind,
        language=row.language,
        seen_at=row.seen_at,
        author=row.author,
    )
