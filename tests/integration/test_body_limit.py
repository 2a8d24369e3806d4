"""Request bodies are capped while they are read: a client sending megabytes gets 413 before
the server has taken them in, whether it declares the length or streams chunks."""

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.factories import add_user, csrf_token, log_in
from tests.integration.test_api import served
from tracker.config import Settings
from tracker.web.app import create_app
from tracker.web.feed_views import OPML_UPLOAD_MAX_BYTES

pytestmark = pytest.mark.integration

CHUNK = 64 * 1024
MIB = 1024 * 1024
DECISION = "/api/v1/pairs/1/decision"


def settings(db_url: str, **changes: object) -> Settings:
    return Settings(database_url=SecretStr(db_url), secret_key=SecretStr("x" * 40), **changes)


@pytest.fixture
def base(db_url: str) -> Iterator[tuple[str, int]]:
    with served(create_app(settings(db_url))) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def status_of(sock: socket.socket) -> int:
    """The status of the response waiting on the socket (the test fails if none comes)."""
    sock.settimeout(10)
    head = sock.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


def test_a_declared_50_mib_body_is_refused_before_it_is_sent(base: tuple[str, int]) -> None:
    with socket.create_connection(base) as sock:
        head = (
            f"POST {DECISION} HTTP/1.1\r\nHost: tracker\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * MIB}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"[" * CHUNK)
        # The other 50 MiB are never sent: the answer comes without them.
        assert status_of(sock) == 413


def test_a_streamed_body_is_cut_off_once_it_passes_the_cap(base: tuple[str, int]) -> None:
    with socket.create_connection(base) as sock:
        head = (
            f"POST {DECISION} HTTP/1.1\r\nHost: tracker\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        for _ in range(MIB // CHUNK + 2):  # just over 1 MiB, and the body is never finished
            sock.sendall(f"{CHUNK:x}\r\n".encode() + b"[" * CHUNK + b"\r\n")
        # A server waiting for the rest of the body would time out here.
        assert status_of(sock) == 413


def test_the_cap_is_configurable_and_small_bodies_pass(db_url: str) -> None:
    with TestClient(create_app(settings(db_url, max_body_bytes=4096))) as client:
        token = csrf_token(client, "/login")
        form = {"email": "x@example.org", "password": "p" * 5000, "csrf_token": token}
        assert client.post("/login", data=form).status_code == 413
        form["password"] = "p" * 100
        assert client.post("/login", data=form).status_code == 401


def test_an_opml_upload_keeps_its_own_larger_cap(db_url: str) -> None:
    add_user(db_url, "admin@newsroom.example", "admin")
    padding = "<!-- " + "x" * (2 * MIB) + " -->"
    document = (
        f'<?xml version="1.0"?>{padding}<opml version="2.0"><head/><body>'
        '<outline type="rss" text="Courier" xmlUrl="https://courier.example/rss"/>'
        "</body></opml>"
    )
    too_big = "<!-- " + "x" * (OPML_UPLOAD_MAX_BYTES + 128 * 1024) + " -->"
    with TestClient(create_app(settings(db_url)), follow_redirects=False) as client:
        log_in(client, "admin@newsroom.example")
        token = csrf_token(client, "/feeds")
        upload = {"file": ("feeds.opml", document.encode(), "text/x-opml")}
        imported = client.post("/feeds/import", data={"csrf_token": token}, files=upload)
        assert imported.status_code == 200, imported.text[:300]
        assert "courier.example" in imported.text
        upload = {"file": ("feeds.opml", too_big.encode(), "text/x-opml")}
        refused = client.post("/feeds/import", data={"csrf_token": token}, files=upload)
        assert refused.status_code == 413
