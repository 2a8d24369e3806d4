"""Alert fan-out: which subscriptions an event concerns, and the outbox rows it writes.

The stage or use case that makes the event calls this in the event's own transaction, so an
alert exists exactly when its event does: new rumours (tracker.pipeline.classify), new pairs
(tracker.pipeline.pairing, and story merges), a confirmation (tracker.usecases.reviews). Storage
only reads candidates and writes rows; every matching rule is here. Each row has a dedupe key,
so a retried task or a second path to the same event queues nothing twice; the relay
(tracker.pipeline.alerts) sends them."""

from collections.abc import Sequence

import psycopg

from classifiers.text import WORD, fold
from tracker.domain import Prediction
from tracker.pipeline.alert_mail import one_line
from tracker.storage import outbox, subscriptions
from tracker.storage.items import ItemForModel
from tracker.storage.subscriptions import PairFollower

SUBJECT_CHARS = 120
# The outbox kinds of follow-a-story alerts.
SUGGESTED = "clarification_suggested"
CONFIRMED = "clarification_confirmed"


def rumours(
    conn: psycopg.Connection,
    rumours: Sequence[tuple[ItemForModel, Prediction]],
    public_url: str | None = None,
) -> int:
    """An alert per (subscription, story or item) that matches the new rumours. Digest
    subscriptions hold theirs until the digest is due."""
    if not rumours:
        return 0
    subs = subscriptions.active(conn, kind="rumours")
    if not subs:
        return 0
    probability = {item.id: p.probability for item, p in rumours}
    queued = 0
    for item in subscriptions.alert_items(conn, list(probability)):
        for sub in subs:
            if probability[item.id] >= sub.min_probability and matches(sub, item):
                queued += outbox.queue(
                    conn, _rumour_event(sub, item, probability[item.id], public_url)
                )
    return queued


def matches(sub: subscriptions.Subscription, item: subscriptions.AlertItem) -> bool:
    """Every filter that is set must match: any keyword, any tag, any feed kind, any language."""
    if sub.tags and not set(sub.tags) & set(item.feed_tags):
        return False
    if sub.feed_kinds and item.feed_kind not in sub.feed_kinds:
        return False
    if sub.languages and (item.language or "").lower().split("-")[0] not in sub.languages:
        return False
    return not sub.keywords or keyword_match(sub.keywords, f"{item.title} {item.summary}")


def keyword_match(keywords: Sequence[str], text: str) -> bool:
    """Words and phrases in any script, ignoring case and accents ("stiri" finds "Știri").
    A keyword must start at a word start and may run on into an ending, so "F-16" finds
    "F-16s" and "Ucrain" finds "Ucrainei", while "war" does not find "award"."""
    haystack = f" {' '.join(WORD.findall(fold(text)))}"
    for keyword in keywords:
        words = WORD.findall(fold(keyword))
        if words and f" {' '.join(words)}" in haystack:
            return True
    return False


def _rumour_event(
    sub: subscriptions.Subscription,
    item: subscriptions.AlertItem,
    probability: float,
    public_url: str | None,
) -> outbox.Event:
    about = f"story:{item.story_id}" if item.story_id is not None else f"item:{item.id}"
    return outbox.Event(
        dedupe_key=f"rumour:{sub.id}:{about}",
        recipient=sub.email,
        subject=f"New rumour: {one_line(item.title, SUBJECT_CHARS)}",
        kind="rumour",
        subscription_id=sub.id,
        item_id=item.id,
        held=sub.digest,
        payload={
            "item_id": item.id,
            "story_id": item.story_id,
            "title": item.title,
            "summary": item.summary[:600],
            "url": item.url,
            "source": item.feed_title,
            "source_kind": item.feed_kind,
            "language": item.language,
            "probability": round(probability, 4),
            "seen_at": item.seen_at.isoformat(),
            "public_url": public_url,
        },
    )


def pairs(conn: psycopg.Connection, pair_ids: Sequence[int], event: str) -> int:
    """Follow-a-story alerts for pairs just suggested or confirmed (`event` is SUGGESTED or
    CONFIRMED). One per (subscription, clarification, event), for the best-scoring pair: a
    clarification spread to every outlet of a story is one email. Suggestions alert only at or
    above the subscription's minimum."""
    if not pair_ids:
        return 0
    queued = 0
    done: set[tuple[int, int]] = set()
    # Best score first within each (subscription, clarification).
    for follower in subscriptions.pair_followers(conn, pair_ids):
        key = (follower.subscription_id, follower.clarification_id)
        if key in done or (event == SUGGESTED and follower.score < follower.min_probability):
            continue
        done.add(key)
        queued += outbox.queue(conn, _pair_event(follower, event))
    return queued


def _pair_event(f: PairFollower, event: str) -> outbox.Event:
    verb = "confirmed" if event == CONFIRMED else "suggested"
    return outbox.Event(
        dedupe_key=f"follow:{f.subscription_id}:{event}:{f.clarification_id}",
        recipient=f.email,
        subject=f"Clarification {verb}: {one_line(f.rumour_title, SUBJECT_CHARS)}",
        kind=event,
        subscription_id=f.subscription_id,
        item_id=f.clarification_id,
        held=f.digest,
        payload={
            "pair_id": f.pair_id,
            "score": f.score,
            "status": f.status,
            "story_id": f.story_id,
            "rumour_id": f.rumour_id,
            "rumour_title": f.rumour_title,
            "rumour_source": f.rumour_source,
            "item_id": f.clarification_id,
            "title": f.title,
            "summary": f.summary[:600],
            "url": f.url,
            "source": f.source,
            "source_kind": f.source_kind,
            "seen_at": f.seen_at.isoformat(),
        },
    )
