"""`tracker alerts ...`: subscriptions (rumour rules, followed stories, ops) and the outbox."""

from dataclasses import asdict
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from tracker.cli.util import choices, connect, fail, one_of, print_json, print_table
from tracker.domain import FEED_KINDS
from tracker.storage import audit, outbox, subscriptions, users
from tracker.storage.subscriptions import Rule, Subscription
from tracker.usecases.subscriptions import (
    DAILY_TIME,
    DAILY_TIME_UNUSED,
    DELIVERIES,
    ONE_TARGET,
    Problem,
    SubscriptionInput,
    SubscriptionRefused,
    problem,
    subscribe,
)

alerts_app = typer.Typer(help="Alert subscriptions and the outbox.", no_args_is_help=True)


@alerts_app.command("subscribe")
def alerts_subscribe(
    email: str,
    keyword: Annotated[
        list[str] | None,
        typer.Option(help="Word or phrase, any language, accents ignored; repeat; none = all."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="Feed tag; repeat for any of several.")
    ] = None,
    feed_kind: Annotated[
        list[str] | None,
        typer.Option(
            callback=one_of(FEED_KINDS), help="Repeat for several. " + choices(FEED_KINDS)
        ),
    ] = None,
    language: Annotated[list[str] | None, typer.Option(help="Language code, e.g. ro.")] = None,
    min_score: Annotated[
        float,
        typer.Option(
            "--min-score",
            "--min-probability",
            min=0.0,
            max=1.0,
            help="Rumour probability (or, following a story, pair score) to alert on.",
        ),
    ] = 0.5,
    digest: Annotated[
        str,
        typer.Option(
            callback=one_of(DELIVERIES),
            help="How often to email. " + choices(DELIVERIES),
        ),
    ] = "immediate",
    at: Annotated[str | None, typer.Option(help="Daily digest time, HH:MM local.")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Bucharest.")] = "UTC",
    follow_story: Annotated[
        int | None, typer.Option(help="Story id: email its clarifications.")
    ] = None,
    follow_item: Annotated[
        int | None, typer.Option(help="Rumour item id (and its story): email clarifications.")
    ] = None,
    ops: Annotated[
        bool, typer.Option("--ops", help="Ops alerts (admins only): feeds, backlog, workers.")
    ] = False,
) -> None:
    """Email EMAIL about new matching rumours, a followed story's clarifications, or ops."""
    try:
        given = SubscriptionInput.model_validate(
            {
                "email": email,
                "keywords": keyword or [],
                "tags": tag or [],
                "feed_kinds": feed_kind or [],
                "languages": language or [],
                "min_score": min_score,
                "delivery": digest,
                "daily_at": at,
                "time_zone": tz,
                "story_id": follow_story,
                "item_id": follow_item,
                "ops": ops,
                # As --keyword's help says: no filter at all matches every rumour.
                "every_rumour": True,
            }
        )
    except ValidationError as exc:
        raise fail(_cli_words(problem(exc), at)) from None
    with connect() as conn, conn.transaction():
        try:
            sub_id = subscribe(conn, given, actor="cli")
        except SubscriptionRefused as exc:
            raise fail(_cli_sentence(str(exc))) from exc
    typer.echo(f"subscription {sub_id}: {given.email} {_describe_rule(given.rule())}")


def _cli_words(found: Problem, at: str | None) -> str:
    """A refusal in the CLI's terms: its options by name where the model speaks of a field."""
    own = {
        DAILY_TIME: f"--at wants HH:MM, got {at!r}",
        DAILY_TIME_UNUSED: "--at is for --digest daily",
        ONE_TARGET: "choose one of --follow-story, --follow-item and --ops",
    }
    return own.get(found.type) or _cli_sentence(found.message)


def _cli_sentence(message: str) -> str:
    # The CLI's errors follow "error: " in lower case without a full stop.
    return message[:1].lower() + message[1:].removesuffix(".")


def _describe_rule(rule: Rule | Subscription) -> str:
    if rule.kind == "ops":
        what = "ops alerts"
    elif rule.kind == "story":
        what = f"story {rule.story_id}" if rule.story_id else f"rumour item {rule.item_id}"
        what = f"clarifications of {what} (score >= {rule.min_probability:.2f})"
    else:
        filters = [", ".join(rule.keywords) or "(all rumours)"]
        filters += [f"{name}: {', '.join(values)}" for name, values in _filters(rule) if values]
        what = f"{'; '.join(filters)} (probability >= {rule.min_probability:.2f})"
    when = rule.delivery
    if rule.delivery == "daily":
        when = f"daily at {rule.digest_at:%H:%M} {rule.time_zone}" if rule.digest_at else when
    return f"{what}, {when}"


def _filters(rule: Rule | Subscription) -> list[tuple[str, Any]]:
    return [("tags", rule.tags), ("kinds", rule.feed_kinds), ("languages", rule.languages)]


@alerts_app.command("list")
def alerts_list(
    email: Annotated[str | None, typer.Option(help="Only this address.")] = None,
    include_removed: Annotated[bool, typer.Option("--all", help="With removed ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List subscriptions."""
    with connect() as conn:
        found = subscriptions.listing(
            conn, users.normalise_email(email) if email else None, include_removed
        )
    if as_json:
        print_json([_subscription_json(s) for s in found])
        return
    print_table(
        ("id", "email", "kind", "rule"),
        (
            (
                s.id,
                s.email,
                s.kind,
                _describe_rule(s) + ("  (removed)" if s.unsubscribed_at else ""),
            )
            for s in found
        ),
    )


def _subscription_json(s: Subscription) -> dict[str, Any]:
    shown = asdict(s)
    shown["digest_at"] = s.digest_at.strftime("%H:%M") if s.digest_at else None
    return shown


@alerts_app.command("remove")
def alerts_remove(subscription_id: int) -> None:
    """Remove a subscription; what it has not sent yet is cancelled."""
    with connect() as conn, conn.transaction():
        if not subscriptions.unsubscribe(conn, subscription_id):
            raise fail(f"no active subscription {subscription_id}")
        audit.record(conn, "cli", "alerts.remove", f"subscription:{subscription_id}")
    typer.echo(f"subscription {subscription_id} removed")


@alerts_app.command("outbox")
def alerts_outbox(
    failed: Annotated[
        bool, typer.Option("--failed", help="Only given-up rows and rows waiting to retry.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Alerts queued, sent and failed, newest first."""
    with connect() as conn:
        found = outbox.entries(conn, failed_only=failed, limit=limit)
    if as_json:
        print_json([asdict(e) for e in found])
        return
    print_table(
        ("id", "status", "to", "subject"),
        (
            (
                e.id,
                e.status,
                e.recipient,
                e.subject + (f"  [{e.attempts} tries: {e.last_error}]" if e.last_error else ""),
            )
            for e in found
        ),
    )
