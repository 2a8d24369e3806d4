"""Alerts: outbox rows written with the event, digests, and the relay that sends them."""

import hashlib
import os
import smtplib
import ssl
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import psycopg
import structlog

from tracker import metrics
from tracker.backoff import backoff
from tracker.config import Settings
from tracker.pipeline import alert_mail
from tracker.pipeline.alert_mail import (
    one_line as one_line,  # re-exported: callers and tests use it
)
from tracker.storage import outbox, subscriptions

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 8
# A failed alert waits TRACKER_ALERT_RETRY_BASE_S, doubling per attempt, at most an hour.
RETRY_MAX_S = 3600.0


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
        # Alerts name subscribers and carry unsubscribe links: for the tracker's user alone.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:16]
        path = self.directory / f"{name}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(bytes(message))
        log.info(
            "alert written to file",
            to=message["To"],
            subject=message["Subject"],
            path=str(path),
        )


def mailer_for(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return FileMailer(settings.data_dir / "mail")


def digest_slot(sub: subscriptions.Subscription, now: datetime) -> datetime:
    """The latest digest time at or before `now`: the top of the hour, or the day's chosen
    local time in the subscription's zone (zoneinfo follows daylight saving)."""
    zone = ZoneInfo(sub.time_zone)
    local = now.astimezone(zone)
    if sub.delivery == "hourly":
        return local.replace(minute=0, second=0, microsecond=0)
    at = sub.digest_at or time(8, 0)
    slot = datetime.combine(local.date(), at, tzinfo=zone)
    if slot > now:
        slot = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=zone)
    return slot


def build_digests(conn: psycopg.Connection, now: datetime | None = None) -> int:
    """Collapse held alerts of every digest subscription whose digest time has come."""
    now = now or datetime.now(UTC)
    built = 0
    for sub in subscriptions.with_held_alerts(conn):
        slot = digest_slot(sub, now)
        if slot <= sub.last_digest_at:
            continue
        with conn.transaction():
            built += outbox.collapse_digest(conn, sub, slot) is not None
    return built


def relay(
    conn: psycopg.Connection,
    mailer: Mailer,
    mail_from: str,
    batch: int = 25,
    send_timeout_s: float = 10.0,
    public_url: str | None = None,
    secret_key: str | None = None,
    now: datetime | None = None,
    burst: int = 0,
    retry_base_s: float = 30.0,
) -> int:
    """Send due outbox rows; returns how many were sent. Safe to run in several processes.

    `burst` > 0: that many immediate alerts (or more) due at once for one subscription go out
    as one digest email instead of a flood. At least once: a relay killed after the server
    accepted a message but before the row is marked sent sends it again once the lease
    expires, with the same Message-ID."""
    ctx = alert_mail.MailContext(mail_from, public_url, secret_key)
    # The lease must outlast the whole batch, or another relay re-claims and resends it.
    lease_s = int(60 + batch * send_timeout_s * 4)
    build_digests(conn, now)
    with conn.transaction():
        outbox.bury_exhausted(conn, MAX_ATTEMPTS)
        outbox.cancel_repeated_stories(conn)
        if burst > 0:
            outbox.collapse_bursts(conn, burst)
        rows = outbox.claim(conn, batch, lease_s=lease_s)
    sent = 0
    for n, row in enumerate(rows):
        try:
            mailer.send(alert_mail.build(row, ctx))
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on its row, not lost
            try:
                _record_failure(conn, row, exc, retry_base_s)
            except psycopg.OperationalError as lost:
                raise BatchInterrupted([], [r.id for r in rows[n:]]) from lost
            continue
        try:
            with conn.transaction():
                outbox.mark_sent(conn, row.id)
        except psycopg.OperationalError as lost:
            raise BatchInterrupted([row.id], [r.id for r in rows[n + 1 :]]) from lost
        sent += 1
    metrics.alerts_relayed(sent, len(rows) - sent)
    return sent


class BatchInterrupted(Exception):
    """The database went away in the middle of a batch. `sent`: accepted by the SMTP server but
    not yet marked sent; `unsent`: claimed and not sent. Whoever holds this marks both once the
    database is back (settle_interrupted): otherwise `sent` would go out again when its lease
    expires, and `unsent` would wait for it."""

    def __init__(self, sent: list[int], unsent: list[int]) -> None:
        super().__init__(f"database lost mid-batch: {len(sent)} sent, {len(unsent)} not sent")
        self.sent = sent
        self.unsent = unsent


def settle_interrupted(conn: psycopg.Connection, interrupted: BatchInterrupted) -> None:
    with conn.transaction():
        for row_id in interrupted.sent:
            outbox.mark_sent(conn, row_id)
        outbox.release(conn, interrupted.unsent)


def _record_failure(
    conn: psycopg.Connection, row: outbox.OutboxRow, exc: Exception, retry_base_s: float
) -> None:
    retry_in = backoff(row.attempts, retry_base_s, RETRY_MAX_S)
    with conn.transaction():
        outbox.mark_failed(
            conn,
            row.id,
            f"{type(exc).__name__}: {exc}",
            retry_in,
            dead=row.attempts >= MAX_ATTEMPTS,
        )
    log.warning("alert not sent", outbox_id=row.id, error=str(exc), attempts=row.attempts)
