"""The pair page: both texts in full, the explanation and score, links to both items and the
story, every decision taken on it, and the queue's actions (confirm, reject, skip, undo,
follow) with its keys."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from tracker.storage import browse, reviews
from tracker.web.deps import MAX_BIGINT, SESSION_NOTICE, AnyUser, ReadPool, render
from tracker.web.pair_display import shared_terms, sides

PairId = Annotated[int, PathParam(ge=1, le=MAX_BIGINT)]

router = APIRouter()


@router.get("/pairs/{pair_id}", response_class=HTMLResponse)
def pair_page(request: Request, pair_id: PairId, user: AnyUser, pool: ReadPool) -> HTMLResponse:
    with pool.connection() as conn:
        pair = browse.get_pair(conn, pair_id)
        if pair is None:
            raise HTTPException(status_code=404, detail="There is no such pair.")
        decisions = reviews.history(conn, pair_id)
    return render(
        request,
        "pair.html",
        user,
        pair=pair,
        sides=sides(pair),
        terms=shared_terms(pair.explanation),
        decisions=decisions,
        # Confirmed by its score alone and not checked since: an analyst may check it here.
        checkable=pair.status == "confirmed" and all(d.undone_at for d in decisions),
        notice=request.session.pop(SESSION_NOTICE, None),
    )
