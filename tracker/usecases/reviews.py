"""An analyst's decision on a pair, shared by the review queue's pages and the API: the rules a
decision must meet, the decision itself with its audit row in one transaction, and the metric.
The callers only read the request and render what happened."""

from datetime import datetime

import psycopg

from tracker import metrics
from tracker.pipeline import alert_fanout
from tracker.storage import audit, reviews
from tracker.storage.users import User
from tracker.usecases.refused import Refused

DECISIONS = ("confirm", "reject", "skip")
MAX_REASON_CHARS = 1000
REFUSALS = {
    "missing": "There is no such pair.",
    "claimed": "Another analyst is reviewing this pair right now.",
    "decided": "This pair has already been decided.",
}


class DecisionRefused(Refused):
    """A decision not taken: the input broke a rule, or the pair is gone, held by another
    analyst, or decided."""


def decide(
    conn: psycopg.Connection,
    pair_id: int,
    user: User,
    decision: str,
    reason: str | None,
    now: datetime,
    via: str | None = None,
) -> None:
    """Confirm, reject or skip a pair as `user`, with its audit row, in one transaction (the
    caller's, if it is in one).
    `via` names the channel in the audit row when it is not the pages ("api").
    DecisionRefused when the decision is not taken; nothing is written then."""
    if decision not in DECISIONS:
        raise DecisionRefused("invalid", "Choose confirm, reject or skip.")
    note = (reason or "").strip()[:MAX_REASON_CHARS] or None
    # A rejection says why, for the audit trail and for the analysts who later wonder why a
    # pair is not there.
    if decision == "reject" and note is None:
        raise DecisionRefused("invalid", "A rejection needs a reason.")
    with conn.transaction():
        decided = reviews.decide(conn, pair_id, user.id, decision, note, now)
        if decided.outcome != "ok":
            raise DecisionRefused(decided.outcome, REFUSALS[decided.outcome])
        # News to the story's followers; an automatic confirmation alerted them when it was made.
        if decision == "confirm" and decided.previous_status == "suggested":
            alert_fanout.pairs(conn, [pair_id], alert_fanout.CONFIRMED)
        details: dict[str, str | None] = {"reason": note}
        if via is not None:
            details["via"] = via
        audit.record(conn, user.email, f"pair.{decision}", f"pair:{pair_id}", details)
    metrics.pair_decided(decision)
