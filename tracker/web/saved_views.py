"""An analyst's saved views: the queue's filters kept under a name, for that user only."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from starlette.datastructures import QueryParams

from tracker.storage import audit, reviews
from tracker.web import auth
from tracker.web.deps import MAX_BIGINT, AnyUser, FormText, Pool, done
from tracker.web.queue_views import queue_page
from tracker.web.review_filters import filter_query, review_filter

MAX_VIEW_NAME = 100

router = APIRouter()


@router.post("/views", response_model=None)
def save_view(
    request: Request, user: AnyUser, pool: Pool, name: FormText = "", query: FormText = ""
) -> Response:
    """Save the queue's current filters under a name, for this user only. Refused, a browser
    gets the queue again with the reason and the name as typed."""
    typed, name = name[:MAX_VIEW_NAME], name.strip()[:MAX_VIEW_NAME]
    query = query.lstrip("?")
    # Re-encoded from what it parses to: a saved view holds only known filters.
    where, problems = review_filter(QueryParams(query))
    refusal = "Give the view a name." if not name else " ".join(problems)
    if refusal:
        if not auth.wants_html(request):
            raise HTTPException(status_code=400, detail=refusal)
        # The queue lists the filters' problems itself: name them once.
        error = "The view was not saved: " + (
            "give it a name." if not name else "the filters above are not understood."
        )
        return queue_page(request, user, pool, query, error=error, view_name=typed, status_code=400)
    clean = filter_query(where)
    with pool.connection() as conn, conn.transaction():
        view_id = reviews.save_view(conn, user.id, name, clean)
        audit.record(conn, user.email, "view.save", f"view:{view_id}", {"query": clean})
    notice = f'View "{name}" saved: it is listed above the queue.'
    return done(request, "/?" + clean, notice, view_id=view_id)


@router.post("/views/{view_id}/delete", response_model=None)
def delete_view(
    request: Request,
    view_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: AnyUser,
    pool: Pool,
) -> Response:
    with pool.connection() as conn, conn.transaction():
        if not reviews.delete_view(conn, user.id, view_id):
            raise HTTPException(status_code=404, detail="There is no such saved view.")
        audit.record(conn, user.email, "view.delete", f"view:{view_id}")
    return done(request, "/", "The saved view is deleted.", view_id=view_id)
