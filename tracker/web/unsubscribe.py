"""One-click unsubscribe from alert emails (RFC 8058): the signed token is the authority.

GET shows a confirmation form (link scanners and prefetchers only GET, so they never
unsubscribe anyone); POST unsubscribes, whether from that form or a mail client's one-click
`List-Unsubscribe=One-Click`. No session and no CSRF token: mail clients have neither, and a
forged request would need the signature."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from psycopg_pool import ConnectionPool

from tracker.pipeline.alert_mail import subscription_from_token
from tracker.storage import audit, subscriptions
from tracker.storage.subscriptions import Subscription
from tracker.web import auth
from tracker.web.deps import templates

PREFIX = "/unsubscribe/"
Pool = Annotated[ConnectionPool, Depends(auth.get_pool)]
Token = Annotated[str, PathParam(max_length=200)]

router = APIRouter()


def _subscription(request: Request, pool: ConnectionPool, token: str) -> Subscription:
    """The subscription a link is for, while the link is of its current generation: once the
    address subscribes again, links mailed before stop working."""
    named = subscription_from_token(request.app.state.secret_key.get_secret_value(), token)
    found = None
    if named is not None:
        with pool.connection() as conn:
            found = subscriptions.get(conn, named[0])
    if found is None or named is None or found.generation != named[1]:
        raise HTTPException(status_code=404, detail="This unsubscribe link is not valid.")
    return found


def _page(request: Request, sub: Subscription, token: str, done: bool) -> HTMLResponse:
    context = {"user": None, "subscription": sub, "token": token, "done": done}
    return templates.TemplateResponse(request, "unsubscribe.html", context)


@router.get(PREFIX + "{token}", response_class=HTMLResponse)
def confirm_form(request: Request, pool: Pool, token: Token) -> HTMLResponse:
    sub = _subscription(request, pool, token)
    return _page(request, sub, token, done=sub.unsubscribed_at is not None)


@router.post(PREFIX + "{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, pool: Pool, token: Token) -> HTMLResponse:
    sub = _subscription(request, pool, token)
    with pool.connection() as conn, conn.transaction():
        if subscriptions.unsubscribe(conn, sub.id):
            # The link is the authority, not a login: the audit row says so.
            audit.record(
                conn,
                sub.email,
                "alerts.unsubscribe",
                f"subscription:{sub.id}",
                {"via": "unsubscribe link"},
            )
        sub = subscriptions.get(conn, sub.id) or sub
    return _page(request, sub, token, done=True)
