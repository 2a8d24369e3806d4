"""The review queue (the pairs this analyst should work next, filtered) and the list of all
pairs, by status or the automatic confirmations to check. Reading only: the actions on a
pair are tracker.web.decision_views."""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from psycopg_pool import ConnectionPool
from starlette.datastructures import QueryParams

from tracker.storage import pairs, reviews
from tracker.storage.users import User
from tracker.web import auth
from tracker.web.deps import (
    PAIR_STATUSES,
    SESSION_NOTICE,
    AnyUser,
    Pool,
    ReadPool,
    render,
    without_nul,
)
from tracker.web.review_filters import MAX_FILTER_CHARS, review_filter

# Views of the pairs confirmed without review (TRACKER_PAIR_AUTOCONFIRM_THRESHOLD).
CHECKS = ("auto", "spot-check")
SPOT_CHECK_SIZE = 10
# The filters typed as text: one not understood is shown again as typed, to be corrected.
TYPED_FILTERS = ("language", "tag", "score_min", "score_max")

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, user: AnyUser, pool: Pool) -> HTMLResponse:
    return queue_page(request, user, pool, str(request.url.query))


def queue_page(
    request: Request,
    user: User,
    pool: ConnectionPool,
    query: str,
    *,
    error: str | None = None,
    view_name: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The queue filtered as the query string asks; a filter not understood is named, and
    stays in its field as typed. After a refused save of a view: why, and the name as typed."""
    params = QueryParams(query)
    where, problems = review_filter(params)
    typed = {
        name: without_nul(params.get(name, "").strip()[:MAX_FILTER_CHARS]) for name in TYPED_FILTERS
    }
    now = auth.now(request)
    # Showing the queue changes nothing: the page's script claims the pair the analyst is on
    # with a POST (/pairs/{id}/claim), the first one as the page opens.
    with pool.connection() as conn:
        found = reviews.queue(conn, user.id, now, where)
        views_saved = reviews.saved_views(conn, user.id)
    return render(
        request,
        "queue.html",
        user,
        status_code=status_code,
        pairs=found,
        where=where,
        problems=problems,
        typed=typed,
        query=query,
        saved=views_saved,
        me=user.id,
        notice=request.session.pop(SESSION_NOTICE, None),
        view_error=error,
        view_name=view_name,
    )


@router.get("/pairs", response_class=HTMLResponse)
def pair_list(request: Request, user: AnyUser, pool: ReadPool, status: str = "") -> HTMLResponse:
    """All pairs, or one status; `auto`: confirmed automatically and not checked since;
    `spot-check`: today's random sample of those, for an analyst to check."""
    if status and status not in (*PAIR_STATUSES, *CHECKS):
        raise HTTPException(status_code=400, detail=f"Unknown status {status!r}.")
    with pool.connection() as conn:
        if status in CHECKS:
            # One sample a day: the same pairs all day for every analyst, new ones tomorrow.
            seed = auth.now(request).date().isoformat() if status == "spot-check" else None
            limit = SPOT_CHECK_SIZE if seed else 100
            found = pairs.list_pairs(conn, "confirmed", limit, unreviewed=True, sample_seed=seed)
        else:
            found = pairs.list_pairs(conn, status=status or None)
    notice = request.session.pop(SESSION_NOTICE, None)
    return render(
        request,
        "pairs.html",
        user,
        pairs=found,
        status=status,
        queue=False,
        notice=notice,
        checking=status in CHECKS,
    )
