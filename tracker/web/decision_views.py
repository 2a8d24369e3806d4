"""An analyst's actions on pairs from the queue and the pair page: claim the pair being
worked, decide it (tracker.usecases.reviews, as the API does), and undo the last action."""

from dataclasses import asdict
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam

from tracker.storage import audit, reviews
from tracker.usecases import reviews as review_usecases
from tracker.web import auth
from tracker.web.deps import (
    MAX_BIGINT,
    SESSION_NOTICE,
    Decider,
    FormText,
    Pool,
    done,
    refusals_as_http,
)

DONE_WORDS = {"confirm": "confirmed", "reject": "rejected", "skip": "skipped"}

router = APIRouter()


@router.post("/pairs/{pair_id}/decision", response_model=None)
def decide(
    request: Request,
    pair_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: Decider,
    pool: Pool,
    decision: FormText = "",
    reason: FormText = "",
    back: FormText = "/",
) -> Response:
    with pool.connection() as conn, refusals_as_http():
        review_usecases.decide(conn, pair_id, user, decision, reason, auth.now(request))
    notice = f"Pair {pair_id} {DONE_WORDS[decision]}."
    return done(request, back, notice, pair_id=pair_id, decision=decision)


@router.post("/pairs/{pair_id}/claim", response_model=None)
def claim(
    request: Request,
    pair_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: Decider,
    pool: Pool,
    back: FormText = "/",
) -> Response:
    """Hold a pair while working it (our script calls this as the analyst moves to a pair).
    A lease, not a decision: it expires by itself, so it is not written to the audit log."""
    now = auth.now(request)
    with pool.connection() as conn, conn.transaction(), refusals_as_http():
        if not reviews.claim(conn, pair_id, user.id, now):
            outcome = reviews.refusal(conn, pair_id)
            raise review_usecases.DecisionRefused(outcome, review_usecases.REFUSALS[outcome])
    until = (now + reviews.CLAIM_LEASE).isoformat()
    return done(request, back, pair_id=pair_id, claimed_until=until)


@router.post("/reviews/undo", response_model=None)
def undo(request: Request, user: Decider, pool: Pool, back: FormText = "/") -> Response:
    """Take back this analyst's last action: a confirm, reject, skip or relabel."""
    with pool.connection() as conn, conn.transaction():
        undone = reviews.undo_last(conn, user.id)
        if undone is None:
            raise HTTPException(status_code=409, detail="There is no decision of yours to undo.")
        _audit_undo(conn, user.email, undone)
    message = undo_message(undone)
    request.session[SESSION_NOTICE] = message
    return done(request, back, message=message, **asdict(undone))


def _audit_undo(conn: psycopg.Connection, actor: str, undone: reviews.Undone) -> None:
    details: dict[str, Any]
    if undone.decision == "relabel":
        details = {"label": undone.label, "label_now": undone.label_now}
        audit.record(conn, actor, "item.relabel_undo", f"item:{undone.item_id}", details)
        return
    details = {"decision": undone.decision}
    if undone.decision == "confirm":
        details.update(alerts_withdrawn=undone.alerts_withdrawn, alerts_sent=undone.alerts_sent)
    audit.record(conn, actor, "pair.undo", f"pair:{undone.pair_id}", details)


def undo_message(undone: reviews.Undone) -> str:
    if undone.decision == "relabel":
        now = (
            f"the analysts' label {undone.label_now} stands again"
            if undone.label_now
            else "no analyst label stands for it now"
        )
        return f"Undone: item {undone.item_id} relabelled {undone.label}; {now}."
    message = f"Undone: pair {undone.pair_id} {DONE_WORDS[undone.decision]}."
    if undone.alerts_withdrawn:
        message += f" {_alerts(undone.alerts_withdrawn)} not sent yet withdrawn."
    if undone.alerts_sent:
        message += f" {_alerts(undone.alerts_sent)} already sent could not be taken back."
    return message


def _alerts(n: int) -> str:
    return f"{n} alert{'s' if n != 1 else ''}"
