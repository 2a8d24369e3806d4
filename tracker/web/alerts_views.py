"""The Alerts pages: a user's own subscriptions, following a story, ops alerts and the outbox.

The same storage functions as `tracker alerts ...` (tracker/cli_alerts.py); no SQL here. Every
form field arrives as text and is checked here, so bad input is a message on the page, never a
422 or a 500, and the page comes back with what the user typed."""

import math
import re
from dataclasses import dataclass, field, replace
from datetime import time
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from psycopg_pool import ConnectionPool

from classifiers.text import WORD, fold
from tracker import alert_input
from tracker.config import Settings
from tracker.domain import FEED_KINDS, ROLES
from tracker.storage import audit, outbox, pairs, subscriptions
from tracker.storage.subscriptions import Rule, Subscription
from tracker.storage.users import User
from tracker.web import auth, views

ALERTS_PATH = "/alerts"
OUTBOX_PATH = "/alerts/outbox"
OUTBOX_LIMIT = 200
MAX_VALUES = 50  # keywords, tags or languages in one rule
MAX_VALUE_CHARS = 200
MAX_BIGINT = 2**63 - 1
SESSION_FLASH = "alerts_flash"
SEPARATORS = re.compile(r"[\n,;]+")

AnyUser = Annotated[User, Depends(auth.require_role(*ROLES))]
Admin = Annotated[User, Depends(auth.require_role("admin"))]
Pool = Annotated[ConnectionPool, Depends(auth.get_pool)]
FormText = views.FormText
FormList = views.FormList

router = APIRouter()


class FormProblem(ValueError):
    """What is wrong with a submitted form, in words for the user."""


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


def to_rule(form: RuleForm, user: User) -> Rule:
    """The rule a form asks for, for the user's own address; FormProblem when it is invalid."""
    rule = Rule(
        email=user.email,
        user_id=user.id,
        keywords=_keywords(form.keywords),
        tags=_values(form.tags, "tag"),
        feed_kinds=_feed_kinds(form.feed_kinds),
        languages=_languages(form.languages),
        min_probability=_min_score(form.min_score),
        delivery=_delivery(form.delivery),
        time_zone=_zone(form.tz),
    )
    if not (rule.keywords or rule.tags or rule.feed_kinds or rule.languages):
        raise FormProblem(
            "Give at least one keyword, tag, feed kind or language: an empty rule would "
            "email you every rumour."
        )
    if rule.delivery == "daily":
        return replace(rule, digest_at=_daily_time(form.at))
    return rule


def _values(text: str, what: str) -> list[str]:
    found = [v.strip() for v in SEPARATORS.split(text) if v.strip()]
    if len(found) > MAX_VALUES:
        raise FormProblem(f"At most {MAX_VALUES} {what}s in one subscription.")
    for value in found:
        if len(value) > MAX_VALUE_CHARS:
            raise FormProblem(f"A {what} may have at most {MAX_VALUE_CHARS} characters.")
    return found


def _keywords(text: str) -> list[str]:
    found = _values(text, "keyword")
    for keyword in found:
        # A keyword without letters or digits would never match anything.
        if not WORD.findall(fold(keyword)):
            raise FormProblem(f"The keyword {keyword!r} has no letters or digits.")
    return found


def _feed_kinds(kinds: list[str]) -> list[str]:
    bad = alert_input.unknown_feed_kinds(kinds)
    if bad:
        raise FormProblem(f"Unknown feed kind {bad[0]!r}; choose from {', '.join(FEED_KINDS)}.")
    return kinds


def _languages(text: str) -> list[str]:
    found = []
    for value in re.split(r"[\s,;]+", text.strip()):
        if not value:
            continue
        code = alert_input.language_code(value)
        if code is None:
            raise FormProblem(f"{value.lower()!r} is not a language code (like en, ro or uk).")
        found.append(code)
    return found


def _min_score(text: str) -> float:
    try:
        value = float(text.strip() or "0.5")
    except ValueError:
        raise FormProblem(f"The minimum score must be a number, got {text!r}.") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise FormProblem("The minimum score must be between 0 and 1.")
    return value


def _delivery(delivery: str) -> str:
    if delivery not in alert_input.DELIVERIES:
        raise FormProblem(f"Delivery must be one of {', '.join(alert_input.DELIVERIES)}.")
    return delivery


def _daily_time(at: str) -> time:
    found = alert_input.daily_time(at)
    if found is None:
        raise FormProblem(f"The daily digest time must be HH:MM (like 07:30), got {at!r}.")
    return found


def _zone(tz: str) -> str:
    found = alert_input.time_zone(tz)
    if found is None:
        raise FormProblem(
            f"Unknown time zone {tz!r}: use an IANA name like Europe/Bucharest or UTC."
        )
    return found


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
    return views.render(
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
        deliveries=alert_input.DELIVERIES,
        zones=alert_input.time_zones(),
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
        rule = to_rule(form, user)
    except FormProblem as problem:
        return alerts_page(request, user, pool, form, str(problem), status_code=400)
    with pool.connection() as conn, conn.transaction():
        sub_id = subscriptions.subscribe(conn, rule)
        audit.record(conn, user.email, "alerts.subscribe", f"subscription:{sub_id}")
    flash(request, f"Subscription {sub_id} saved.")
    return views.see_other(ALERTS_PATH)


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
    return views.see_other(ALERTS_PATH)


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
    rule = Rule(email=user.email, user_id=user.id, kind="story", story_id=story, item_id=item)
    try:
        with pool.connection() as conn, conn.transaction():
            sub_id = subscriptions.subscribe(conn, rule)
            audit.record(conn, user.email, "alerts.follow", f"subscription:{sub_id}")
            answered = pairs.clarified(conn, story, item)
    except psycopg.errors.ForeignKeyViolation:
        raise HTTPException(status_code=404, detail="There is no such story or item.") from None
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
        request.session[views.SESSION_NOTICE] = message
        return views.see_other(views.local_path(back))
    flash(request, message)
    return views.see_other(ALERTS_PATH)


@router.post(ALERTS_PATH + "/ops")
def ops_toggle(
    request: Request, user: Admin, pool: Pool, action: FormText = ""
) -> RedirectResponse:
    if action not in ("subscribe", "unsubscribe"):
        raise HTTPException(status_code=400, detail="Choose subscribe or unsubscribe.")
    with pool.connection() as conn, conn.transaction():
        if action == "subscribe":
            rule = Rule(email=user.email, user_id=user.id, kind="ops")
            sub_id = subscriptions.subscribe(conn, rule)
            audit.record(conn, user.email, "alerts.subscribe", f"subscription:{sub_id}")
        else:
            for sub in _ops_subscriptions(conn, user):
                subscriptions.unsubscribe(conn, sub.id)
                audit.record(conn, user.email, "alerts.remove", f"subscription:{sub.id}")
    flash(request, "Ops alerts " + ("on." if action == "subscribe" else "off."))
    return views.see_other(ALERTS_PATH)


def _ops_subscriptions(conn: psycopg.Connection, user: User) -> list[Subscription]:
    return [s for s in subscriptions.listing(conn, user.email) if s.kind == "ops"]


@router.get(OUTBOX_PATH, response_class=HTMLResponse)
def outbox_page(request: Request, user: Admin, pool: Pool, failed: str = "") -> HTMLResponse:
    failed_only = failed not in ("", "0")
    with pool.connection() as conn:
        found = outbox.entries(conn, failed_only=failed_only, limit=OUTBOX_LIMIT)
    settings: Settings = request.app.state.settings
    return views.render(
        request,
        "alerts_outbox.html",
        user,
        entries=found,
        failed=failed_only,
        limit=OUTBOX_LIMIT,
        # Without an SMTP server, "sent" means written to a file: the page must say so.
        mail_dir=None if settings.smtp_host else settings.data_dir / "mail",
    )
