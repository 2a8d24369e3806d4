"""An analyst's label for an item (rumour, clarification or other), which training reads
(tracker.storage.labels); undone with the pair decisions (tracker.web.decision_views)."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam

from tracker.domain import LABELS
from tracker.storage import audit, labels, reviews
from tracker.web.deps import MAX_BIGINT, Decider, FormText, Pool, done

router = APIRouter()


@router.post("/items/{item_id}/label", response_model=None)
def relabel(
    request: Request,
    item_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: Decider,
    pool: Pool,
    label: FormText = "",
    back: FormText = "/",
) -> Response:
    """An analyst's label for an item; training reads it (tracker.storage.labels)."""
    if label not in LABELS:
        raise HTTPException(status_code=400, detail="Choose rumour, clarification or other.")
    with pool.connection() as conn, conn.transaction():
        if not reviews.item_exists(conn, item_id):
            raise HTTPException(status_code=404, detail="There is no such item.")
        labels.add_item_label(conn, item_id, label, user.id)
        audit.record(conn, user.email, "item.relabel", f"item:{item_id}", {"label": label})
    notice = f"Item {item_id} labelled {label}."
    return done(request, back, notice, item_id=item_id, label=label)
