"""Alerts: outbox rows written with the event, and the relay that sends them by email."""

import hashlib
import random
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import psycopg
import structlog

from classifiers.text import fold
from tracker.config import Settings
from tracker.domain import Prediction
from tracker.storage import outbox
from tracker.storage.items import ItemForModel

log = structlog.get_logger(__name__)

CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_ATTEMPTS = 8


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    def __init__(self, settings: Settings):
        self.settings = settings

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host is not None
        # smtplib verifies nothing unless given a context; the SMTP password depends on it.
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.smtp_ssl:
            smtp = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s)
        with smtp:
            if s.smtp_starttls and not s.smtp_ssl:
                smtp.starttls(context=context)
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)


class FileMailer:
    """Used when no SMTP server is configured: each message becomes an .eml file."""

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:16]
        (self.directory / f"{name}.eml").write_bytes(bytes(message))
        log.info(
            "alert written to file",
            to=message["To"],
            subject=message["Subject"],
            path=str(self.directory / f"{name}.eml"),
        )


def mailer_for(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return FileMailer(settings.data_dir / "mail")


def one_line(text: str, limit: int = 150) -> str:
    """Header-safe text: item titles are untrusted and must not add headers."""
    cleaned = CONTROL.sub(" ", text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def queue_rumour_alerts(
    conn: psycopg.Connection,
    rumours: Sequence[tuple[ItemForModel, Prediction]],
    public_url: str | None,
) -> int:
    """Write one outbox row per (subscription, rumour) that matches; call inside the event's
    transaction so an alert exists exactly when its rumour does."""
    if not rumours:
        return 0
    queued = 0
    for sub in outbox.subscriptions(conn):
        for item, prediction in rumours:
            if prediction.probability < sub.min_probability or not _matches(sub.keywords, item):
                continue
            queued += outbox.enqueue(
                conn,
                f"rumour:{sub.id}:{item.id}",
                sub.email,
                f"New rumour: {one_line(item.title)}",
                _rumour_body(item, prediction, public_url),
            )
    return queued


def _matches(keywords: Sequence[str], item: ItemForModel) -> bool:
    if not keywords:
        return True
    text = fold(f"{item.title} {item.summary}")
    return any(fold(k) in text for k in keywords)


def _rumour_body(item: ItemForModel, prediction: Prediction, public_url: str | None) -> str:
    link = f"{public_url.rstrip('/')}/" if public_url else "the tracker's review page"
    return (
        f"A new item was flagged as a rumour (probability {prediction.probability:.2f}).\n\n"
        f"{item.title}\n\n{item.summary[:600]}\n\n"
        f"Source kind: {item.feed_kind}   Seen: {item.seen_at:%Y-%m-%d %H:%M} UTC\n"
        f"Review it at {link}\n"
    )


def relay(
    conn: psycopg.Connection,
    mailer: Mailer,
    mail_from: str,
    batch: int = 25,
    send_timeout_s: float = 10.0,
) -> int:
    """Send due outbox rows; returns how many were sent. Safe to run in several processes."""
    # The lease must outlast the whole batch, or another relay re-claims and resends it.
    lease_s = int(60 + batch * send_timeout_s * 4)
    with conn.transaction():
        outbox.bury_exhausted(conn, MAX_ATTEMPTS)
        rows = outbox.claim(conn, batch, lease_s=lease_s)
    sent = 0
    for row in rows:
        try:
            mailer.send(_message(row, mail_from))
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on its row, not lost
            retry_in = min(3600, 30 * 2**row.attempts) * random.uniform(0.8, 1.2)  # noqa: S311
            with conn.transaction():
                outbox.mark_failed(
                    conn,
                    row.id,
                    f"{type(exc).__name__}: {exc}",
                    retry_in,
                    dead=row.attempts >= MAX_ATTEMPTS,
                )
            log.warning("alert not sent", outbox_id=row.id, error=str(exc), attempts=row.attempts)
            continue
        with conn.transaction():
            outbox.mark_sent(conn, row.id)
        sent += 1
    return sent


def _message(row: outbox.OutboxRow, mail_from: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = row.recipient
    message["Subject"] = one_line(row.subject)
    # Stable per row: a resend after a crash carries the same Message-ID, so clients fold it.
    digest = hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:24]
    message["Message-ID"] = f"<alert-{digest}@rumour-tracker>"
    message.set_content(row.body_text)
    return message
