"""The relay's SMTP transport against real aiosmtpd servers on loopback: STARTTLS, implicit
TLS, authentication, certificate checks and timeouts, each outcome recorded on the outbox row;
and item text that tries to add mail headers on its way to a real server."""

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from tests.conftest import free_port
from tests.factories import add_feed, add_item, add_story, suggest
from tracker.config import Settings
from tracker.domain import Prediction
from tracker.pipeline import alert_fanout, alerts
from tracker.storage import items, outbox, subscriptions
from tracker.storage.subscriptions import Rule

pytestmark = pytest.mark.integration

USER, PASSWORD = "relay", "relay password"


class Recorder:
    """Keeps each message with what the server knew about the session that sent it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            {
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "authenticated": bool(session.authenticated),
                "rcpt_tos": list(envelope.rcpt_tos),
                "content": envelope.content,
            }
        )
        return "250 OK"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: the server itself answers 535 to a refusal.
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # The relay verifies certificates against the default CA store; make ours part of it.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


def serve(recorder: Recorder, **options: Any) -> Controller:
    return Controller(recorder, hostname="127.0.0.1", port=free_port(), **options)


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    controller = serve(
        recorder,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
    )
    controller.start()
    yield recorder, controller.port
    controller.stop()


def send_one(conn: psycopg.Connection, settings: Settings, key: str = "k") -> int:
    outbox.enqueue(conn, key, "desk@example.org", "New rumour: x", "body")
    return alerts.relay(
        conn, alerts.SmtpMailer(settings), "t@example.org", send_timeout_s=settings.smtp_timeout_s
    )


def last_error(conn: psycopg.Connection) -> str:
    (entry,) = outbox.entries(conn, failed_only=True)
    assert entry.status == "pending" and entry.attempts == 1
    return entry.last_error or ""


def test_starttls_with_a_login_delivers_over_an_encrypted_authenticated_session(
    conn: psycopg.Connection, starttls_server: tuple[Recorder, int], trusted: None
) -> None:
    recorder, port = starttls_server
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=True,
        smtp_username=USER,
        smtp_password=SecretStr(PASSWORD),
        smtp_timeout_s=5,
    )
    assert send_one(conn, settings) == 1
    (got,) = recorder.received
    assert got["tls"] and got["authenticated"] and got["rcpt_tos"] == ["desk@example.org"]


def test_a_wrong_smtp_password_is_recorded_on_the_row_and_nothing_is_sent(
    conn: psycopg.Connection, starttls_server: tuple[Recorder, int], trusted: None
) -> None:
    recorder, port = starttls_server
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=True,
        smtp_username=USER,
        smtp_password=SecretStr("not it"),
        smtp_timeout_s=5,
    )
    assert send_one(conn, settings) == 0
    assert last_error(conn).startswith("SMTPAuthenticationError")
    assert recorder.received == []


def test_without_starttls_a_server_that_requires_it_refuses_and_the_row_says_why(
    conn: psycopg.Connection, starttls_server: tuple[Recorder, int]
) -> None:
    recorder, port = starttls_server
    assert send_one(conn, Settings(smtp_host="127.0.0.1", smtp_port=port)) == 0
    assert "STARTTLS" in last_error(conn)
    assert recorder.received == []


def test_starttls_to_a_server_with_an_untrusted_certificate_is_refused(
    conn: psycopg.Connection, starttls_server: tuple[Recorder, int]
) -> None:
    """No SSL_CERT_FILE here: the self-signed certificate is not trusted, so the relay must not
    hand it the password."""
    recorder, port = starttls_server
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=True,
        smtp_username=USER,
        smtp_password=SecretStr(PASSWORD),
    )
    assert send_one(conn, settings) == 0
    assert last_error(conn).startswith("SSLCertVerificationError")
    assert recorder.received == []


def test_implicit_tls_delivers_on_an_smtps_port(
    conn: psycopg.Connection, certificate: tuple[Path, Path], trusted: None
) -> None:
    recorder = Recorder()
    controller = serve(recorder, ssl_context=server_context(certificate))
    controller.start()
    try:
        settings = Settings(smtp_host="127.0.0.1", smtp_port=controller.port, smtp_ssl=True)
        assert send_one(conn, settings) == 1
    finally:
        controller.stop()
    (got,) = recorder.received
    assert got["tls"] and not got["authenticated"]


def test_a_server_that_never_answers_times_out_and_the_row_waits_to_retry(
    conn: psycopg.Connection,
) -> None:
    # The kernel completes the connection (listen backlog) but nobody ever speaks SMTP on it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_s=0.5)
        assert send_one(conn, settings) == 0
    assert "timed out" in last_error(conn)


def test_item_text_with_line_breaks_cannot_add_headers_or_recipients_on_the_wire(
    conn: psycopg.Connection,
) -> None:
    feed = add_feed(conn, "x", title="Wire\r\nBcc: feed@evil.example")
    evil = "Breaking\r\nBcc: victim@evil.example\r\nX-Evil: 1\nSubject: forged"
    story = add_story(conn, "s")
    rumour, clarification = (
        add_item(conn, feed, evil, "x", None, None, story_id=story, dedupe_key=key)
        for key in ("r", "c")
    )
    subscriptions.subscribe(conn, Rule(email="desk@example.org"))
    subscriptions.subscribe(
        conn, Rule(email="desk@example.org", kind="story", story_id=story, min_probability=0)
    )
    with conn.transaction():
        found = items.for_model(conn, [rumour])
        assert alert_fanout.rumours(conn, [(found[0], Prediction("rumour", 0.9))]) == 1
        assert suggest(conn, rumour, clarification, 0.9)
    recorder = Recorder()
    controller = serve(recorder)
    controller.start()
    try:
        mailer = alerts.SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=controller.port))
        assert alerts.relay(conn, mailer, "t@example.org") == 2
    finally:
        controller.stop()
    assert [r["rcpt_tos"] for r in recorder.received] == [["desk@example.org"]] * 2
    for got in recorder.received:
        mail = message_from_bytes(got["content"], policy=policy.default)
        assert mail["Bcc"] is None and mail["X-Evil"] is None
        assert len(mail.get_all("Subject") or []) == 1
        assert "Breaking Bcc: victim@evil.example X-Evil: 1 Subject: forged" in mail["Subject"]
