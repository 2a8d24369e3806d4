"""The Alerts pages: a user's own subscriptions, following a story, ops alerts and the outbox.

The same use case as `tracker alerts ...` (tracker/usecases/subscriptions.py); no SQL here.
Every form field arrives as text and is checked by the use case's model, so bad input is a
message on the page, never a 422 or a 500, and the page comes back with what the user typed."""

from dataclasses import dataclass, field
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from tracker.config import Settings
from tracker.domain import FEED_KINDS, ROLES
from tracker.storage import audit, outbox, pairs, subscriptions
from tracker.storage.subscriptions import Subscription
from tracker.storage.users import User
from tracker.usecases.subscriptions import (
    DELIVERIES,
    SubscriptionInput,
    problem,
    subscribe,
    time_zones,
)
from tracker.web import auth, deps

ALERTS_PATH = "/alerts"
OUTBOX_PATH = "/alerts/outbox"
OUTBOX_LIMIT = 200
MAX_BIGINT = 2**63 - 1
SESSION_FLASH = "alerts_flash"

AnyUser = Annotated[User, Depends(auth.require_role(*ROLES))]
Admin = Annotated[User, Depends(auth.require_role("admin"))]
Pool = Annotated[ConnectionPool, Depends(auth.get_pool)]
FormText = deps.FormText
FormList = deps.FormList

router = APIRouter()


@dataclass(frozen=True)
class RuleForm:
    """The subscription form as typed, shown again when it has a problem."""

    keywords: str = ""
    tags: str = ""
    feed_kinds: list[str] = field(default_factory=list)
    languages: str = ""
    min_score: str = "0.5"
    delivery: str = "immediate"
    at: str = "08:00"
    tz: str = "UTC"


def subscription_input(form: RuleForm, user: User) -> SubscriptionInput:
    """The subscription a form asks for, for the user's own address; ValidationError when the
    input is invalid (the form's texts are split and checked by the model)."""
    return SubscriptionInput.model_validate(
        {
            "email": user.email,
            "user_id": user.id,
            "keywords": form.keywords,
            "tags": form.tags,
            "feed_kinds": form.feed_kinds,
            "languages": form.languages,
            "min_score": form.min_score,
            "delivery": form.delivery,
            # The page always posts a time; it only means something for a daily digest.
            "daily_at": form.at if form.delivery == "daily" else None,
            "time_zone": form.tz,
        }
    )


def flash(request: Request, message: str) -> None:
    request.session[SESSION_FLASH] = message


def take_flash(request: Request) -> str | None:
    message = request.session.pop(SESSION_FLASH, None)
    return message if isinstance(message, str) else None


def alerts_page(
    request: Request,
    user: User,
    pool: ConnectionPool,
    form: RuleForm | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with pool.connection() as conn:
        own = subscriptions.listing(conn, user.email)
        titles = subscriptions.followed_titles(conn, [s.id for s in own])
        ops_to = {email for _, email in subscriptions.ops_recipients(conn)}
    return deps.render(
        request,
        "alerts.html",
        user,
        status_code=status_code,
        subscriptions=own,
        titles=titles,
        form=form or RuleForm(),
        error=error,
        notice=take_flash(request),
        kinds=FEED_KINDS,
        deliveries=DELIVERIES,
        zones=time_zones(),
        ops_subscribed=any(s.kind == "ops" for s in own),
        ops_receiving=user.email in ops_to,
        ops_nobody=not ops_to,
    )


@router.get(ALERTS_PATH, response_class=HTMLResponse)
def alerts_home(request: Request, user: AnyUser, pool: Pool) -> HTMLResponse:
    return alerts_page(request, user, pool)


@router.post(ALERTS_PATH, response_model=None)
def add_subscription(
    request: Request,
    user: AnyUser,
    pool: Pool,
    keywords: FormText = "",
    tags: FormText = "",
    feed_kind: FormList = [],  # noqa: B006 - FastAPI copies defaults per request
    languages: FormText = "",
    min_score: FormText = "0.5",
    delivery: FormText = "immediate",
    at: FormText = "08:00",
    tz: FormText = "UTC",
) -> HTMLResponse | RedirectResponse:
    form = RuleForm(keywords, tags, feed_kind, languages, min_score, delivery, at, tz)
    try:
        given = subscription_input(form, user)
    except ValidationError as exc:
        message = problem(exc).message
        return alerts_page(request, user, pool, form, message, status_code=400)
    with pool.connection() as conn, conn.transaction():
        sub_id = subscribe(conn, given, actor=user.email)
    flash(request, f"Subscription {sub_id} saved.")
    return deps.see_other(ALERTS_PATH)


@router.post(ALERTS_PATH + "/{subscription_id}/remove")
def remove_subscription(
    request: Request,
    subscription_id: Annotated[int, PathParam(ge=1, le=MAX_BIGINT)],
    user: AnyUser,
    pool: Pool,
) -> RedirectResponse:
    with pool.connection() as conn, conn.transaction():
        found = subscriptions.get(conn, subscription_id)
        # Someone else's subscription is "not found": ids of others are none of your business.
        if found is None or found.email != user.email:
            raise HTTPException(status_code=404, detail="You have no such subscription.")
        if subscriptions.unsubscribe(conn, subscription_id):
            audit.record(conn, user.email, "alerts.remove", f"subscription:{subscription_id}")
    flash(request, f"Subscription {subscription_id} removed; nothing more will be sent for it.")
    return deps.see_other(ALERTS_PATH)


def _positive_id(text: str) -> int | None:
    value = text.strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_BIGINT:
        raise HTTPException(status_code=400, detail=f"Not an id: {text!r}.")
    return int(value)


@router.post(ALERTS_PATH + "/follow")
def follow(
    request: Request,
    user: AnyUser,
    pool: Pool,
    story_id: FormText = "",
    item_id: FormText = "",
    back: FormText = "",
) -> RedirectResponse:
    """Follow a story (or a rumour not yet in a story), as `--follow-story` / `--follow-item`.
    From the queue or a pair page (`back`), the analyst stays there and is told so."""
    story, item = _positive_id(story_id), _positive_id(item_id)
    if (story is None) == (item is None):
        raise HTTPException(status_code=400, detail="Follow either a story or a rumour item.")
    given = SubscriptionInput(email=user.email, user_id=user.id, story_id=story, item_id=item)
    with pool.connection() as conn, conn.transaction(), deps.refusals_as_http():
        subscribe(conn, given, actor=user.email, action="alerts.follow")
        answered = pairs.clarified(conn, story, item)
    what = f"story {story}" if story is not None else f"rumour {item}"
    if answered:
        message = (
            f"You follow {what}. It is already clarified: you will get an email when another "
            "clarification is suggested or confirmed."
        )
    else:
        message = (
            f"You follow {what}: you will get an email when a clarification is suggested "
            "or confirmed."
        )
    if back:
        request.session[deps.SESSION_NOTICE] = message
        return deps.see_other(deps.local_path(back))
    flash(request, message)
    return deps.see_other(ALERTS_PATH)


@router.post(ALERTS_PATH + "/ops")
def ops_toggle(
    request: Request, user: Admin, pool: Pool, action: FormText = ""
) -> RedirectResponse:
    if action not in ("subscribe", "unsubscribe"):
        raise HTTPException(status_code=400, detail="Choose subscribe or unsubscribe.")
    with pool.connection() as conn, conn.transaction():
        if action == "subscribe":
            # The Admin dependency has checked the role; subscribe checks it again.
            subscribe(
                conn, SubscriptionInput(email=user.email, user_id=user.id, ops=True), user.email
            )
        else:
            for sub in _ops_subscriptions(conn, user):
                subscriptions.unsubscribe(conn, sub.id)
                audit.record(conn, user.email, "alerts.remove", f"subscription:{sub.id}")
    flash(request, "Ops alerts " + ("on." if action == "subscribe" else "off."))
    return deps.see_other(ALERTS_PATH)


def _ops_subscriptions(conn: psycopg.Connection, user: User) -> list[Subscription]:
    return [s for s in subscriptions.listing(conn, user.email) if s.kind == "ops"]


@router.get(OUTBOX_PATH, response_class=HTMLResponse)
def outbox_page(request: Request, user: Admin, pool: Pool, failed: str = "") -> HTMLResponse:
    failed_only = failed not in ("", "0")
    with pool.connection() as conn:
        found = outbox.entries(conn, failed_only=failed_only, limit=OUTBOX_LIMIT)
    settings: Settings = request.app.state.settings
    return deps.render(
        request,
        "alerts_outbox.html",
        user,
        entries=found,
        failed=failed_only,
        limit=OUTBOX_LIMIT,
        # Without an SMTP server, "sent" means written to a file: the page must say so.
        mail_dir=None if settings.smtp_host else settings.data_dir / "mail",
    )
