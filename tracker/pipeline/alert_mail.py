"""Alert emails: subject, plain-text and HTML bodies from templates, headers, unsubscribe links."""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2
from itsdangerous import BadSignature, URLSafeSerializer

from tracker.storage.outbox import OutboxRow

CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
TEMPLATES_DIR = Path(__file__).parents[1] / "templates" / "mail"
UNSUBSCRIBE_SALT = "alert-unsubscribe"
# Rows whose text was written when they were queued (ops notices, older alerts).
PRE_RENDERED = frozenset({"message", "ops"})
HEADLINES = {
    "rumour": "New rumour",
    "clarification_suggested": "Clarification suggested for a story you follow",
    "clarification_confirmed": "Clarification confirmed for a story you follow",
}


@dataclass(frozen=True)
class MailContext:
    mail_from: str
    public_url: str | None = None
    secret_key: str | None = None


def one_line(text: str, limit: int = 150) -> str:
    """Header-safe text: item titles are untrusted and must not add headers."""
    cleaned = CONTROL.sub(" ", text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def unsubscribe_token(secret_key: str, subscription_id: int, generation: int) -> str:
    """A link token bound to the subscription's generation: subscribing again (a new
    generation) makes every older link invalid."""
    serializer = URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT)
    return serializer.dumps([subscription_id, generation])


def subscription_from_token(secret_key: str, token: str) -> tuple[int, int] | None:
    """The subscription and generation a signed token names; None when forged, altered or
    malformed. A bare id is a link mailed before generations: it names generation 0."""
    try:
        value = URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT).loads(token)
    except BadSignature:
        return None
    if _is_int(value):
        return value, 0
    if isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value):
        return value[0], value[1]
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def message_id(dedupe_key: str) -> str:
    # Stable per row: a resend after a crash carries the same Message-ID, so clients fold it.
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:24]
    return f"<alert-{digest}@rumour-tracker>"


def build(row: OutboxRow, ctx: MailContext) -> EmailMessage:
    """The email for one outbox row. Every header value is one line: item text cannot add
    headers (EmailMessage also refuses CR/LF in header values)."""
    message = EmailMessage()
    message["From"] = ctx.mail_from
    message["To"] = row.recipient
    message["Subject"] = one_line(row.subject)
    message["Message-ID"] = message_id(row.dedupe_key)
    unsubscribe = _unsubscribe_url(row, ctx)
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if row.kind in PRE_RENDERED:
        footer = f"\n--\nUnsubscribe: {unsubscribe}\n" if unsubscribe else ""
        message.set_content(row.body_text + footer)
        return message
    context = _context(row, ctx, unsubscribe)
    message.set_content(_env().get_template("alert.txt").render(context))
    message.add_alternative(_env().get_template("alert.html").render(context), subtype="html")
    return message


def _unsubscribe_url(row: OutboxRow, ctx: MailContext) -> str | None:
    if row.subscription_id is None or not ctx.public_url or not ctx.secret_key:
        return None
    token = unsubscribe_token(ctx.secret_key, row.subscription_id, row.subscription_generation or 0)
    return f"{ctx.public_url.rstrip('/')}/unsubscribe/{token}"


def _context(row: OutboxRow, ctx: MailContext, unsubscribe: str | None) -> dict[str, Any]:
    payload = row.payload or {}
    raw = payload.get("entries", []) if row.kind == "digest" else [{**payload, "kind": row.kind}]
    base = (ctx.public_url or str(payload.get("public_url") or "")).rstrip("/")
    entries = [_entry(e, base) for e in raw]
    return {
        "digest": row.kind == "digest",
        "headline": one_line(row.subject),
        "entries": entries,
        "unsubscribe_url": unsubscribe,
        "home_url": f"{base}/" if base else None,
    }


def _entry(payload: dict[str, Any], base: str) -> dict[str, Any]:
    kind = str(payload.get("kind", "rumour"))
    pair_id = payload.get("pair_id")
    if pair_id is not None:
        status = "confirmed" if kind == "clarification_confirmed" else "suggested"
        link = f"{base}/pairs?status={status}#pair-{int(pair_id)}"
    else:
        link = f"{base}/"
    score = payload.get("score", payload.get("probability"))
    return {
        "kind": kind,
        "what": HEADLINES.get(kind, "Alert"),
        "title": one_line(str(payload.get("title", "")), 300),
        "snippet": _snippet(str(payload.get("summary", ""))),
        "source": one_line(str(payload.get("source", "")), 200),
        "source_kind": str(payload.get("source_kind", "")),
        "score": f"{float(score):.2f}" if isinstance(score, int | float) else None,
        "rumour_title": one_line(str(payload.get("rumour_title", "")), 300) or None,
        "url": _http_url(payload.get("url")),
        "seen_at": _when(payload.get("seen_at")),
        "link": link if base else None,
    }


def _snippet(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _http_url(url: object) -> str | None:
    # Item URLs come from untrusted feeds: only web links go into an email.
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return url
    return None


def _when(value: object) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return ""


_environment: list[jinja2.Environment] = []


def _env() -> jinja2.Environment:
    # Built on first use (no work at import). Autoescape applies to the .html templates only:
    # the text part must show titles as written.
    if not _environment:
        _environment.append(
            jinja2.Environment(
                loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                autoescape=jinja2.select_autoescape(["html"]),
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
            )
        )
    return _environment[0]
