"""The web UI on a real PostgreSQL: login, the review queue, decisions, CSRF, roles, escaping."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr

from tests.factories import (
    CLARIFICATION,
    PASSWORD,
    RUMOUR,
    add_feed,
    add_one_pair,
    add_user,
    csrf_token,
    log_in,
)
from tracker.config import Settings
from tracker.storage.db import SchemaOutOfDateError
from tracker.usecases.accounts import ensure_admin
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

NEW_PASSWORD = "another long password"


def make_app(db_url: str | None) -> FastAPI:
    database_url = SecretStr(db_url) if db_url else None
    return create_app(Settings(database_url=database_url, secret_key=SecretStr("x" * 40)))


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(db_url), follow_redirects=False) as test_client:
        yield test_client


def query(db_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(statement, params).fetchall()


def unmarked(response: httpx.Response) -> str:
    """The page without the <mark> tags that highlight shared terms inside item text."""
    return re.sub(r"</?mark>", "", response.text)


def pair_status(db_url: str, pair_id: int) -> str:
    return str(query(db_url, "SELECT status FROM pairs WHERE id = %s", pair_id)[0][0])


def count(db_url: str, table: str) -> int:
    statement = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    with psycopg.connect(db_url) as conn:
        row = conn.execute(statement).fetchone()
        assert row is not None
        return int(row[0])


def test_an_anonymous_visitor_is_sent_to_the_login_page(client: TestClient) -> None:
    for path in ("/", "/pairs", "/account/password"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"


def test_health_needs_no_login_and_every_page_carries_security_headers(
    client: TestClient,
) -> None:
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}
    headers = client.get("/login").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_a_wrong_password_or_unknown_email_shows_a_message_not_an_error(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    for email, password in (("ana@newsroom.example", "not the password"), ("bob@x.example", "")):
        response = log_in(client, email, password)
        assert response.status_code == 401
        assert "Wrong email or password." in response.text
    assert client.get("/").status_code == 303


def test_an_analyst_who_logs_in_sees_the_rumour_beside_its_clarification(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    add_one_pair(db_url)
    response = log_in(client, "Ana@Newsroom.example ", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>Rumour Tracker</title>" in page.text
    # Shared terms are highlighted inside the titles (<mark>); the words are all there.
    text = unmarked(page)
    for shown in (RUMOUR, CLARIFICATION, "Daily Courier", "Ministry of Defence", "official"):
        assert shown in text
    assert "score 0.88" in page.text
    assert "f-16" in page.text
    assert "Story seen in 1 outlet" in page.text
    assert 'value="confirm"' in page.text
    assert 'value="reject"' in page.text


def test_a_decision_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    pair_id = add_one_pair(db_url)
    log_in(client, "ana@newsroom.example")
    for extra in ({}, {"csrf_token": "forged"}):
        response = client.post(f"/pairs/{pair_id}/decision", data={"decision": "confirm", **extra})
        assert response.status_code == 403
    assert pair_status(db_url, pair_id) == "suggested"
    assert count(db_url, "reviews") == 0
    assert count(db_url, "audit_log") == 0


def test_confirming_a_pair_records_the_review_and_an_audit_entry(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    pair_id = add_one_pair(db_url)
    log_in(client, "ana@newsroom.example")
    form = {"decision": "confirm", "reason": "same claim", "csrf_token": csrf_token(client, "/")}
    response = client.post(f"/pairs/{pair_id}/decision", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert pair_status(db_url, pair_id) == "confirmed"
    reviews = query(db_url, "SELECT pair_id, decision, reason FROM reviews")
    assert reviews == [(pair_id, "confirm", "same claim")]
    audit = query(db_url, "SELECT actor, action, target FROM audit_log")
    assert audit == [("ana@newsroom.example", "pair.confirm", f"pair:{pair_id}")]
    assert RUMOUR not in unmarked(client.get("/"))
    assert RUMOUR in client.get("/pairs?status=confirmed").text


def test_a_rejection_may_carry_the_csrf_token_in_a_header(client: TestClient, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "admin")
    pair_id = add_one_pair(db_url)
    log_in(client, "ana@newsroom.example")
    headers = {"X-CSRF-Token": csrf_token(client, "/")}
    response = client.post(
        f"/pairs/{pair_id}/decision",
        data={"decision": "reject", "reason": "different events"},
        headers=headers,
    )
    assert response.status_code == 303
    assert pair_status(db_url, pair_id) == "rejected"


def test_a_viewer_sees_the_queue_without_buttons_and_cannot_decide(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, "vic@newsroom.example", "viewer")
    pair_id = add_one_pair(db_url)
    log_in(client, "vic@newsroom.example")
    page = client.get("/")
    assert RUMOUR in unmarked(page)
    assert 'value="confirm"' not in page.text
    form = {"decision": "confirm", "csrf_token": csrf_token(client, "/")}
    assert client.post(f"/pairs/{pair_id}/decision", data=form).status_code == 403
    assert pair_status(db_url, pair_id) == "suggested"
    assert count(db_url, "reviews") == 0


def test_markup_in_item_titles_and_links_is_shown_as_text(client: TestClient, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    add_one_pair(
        db_url,
        rumour="<script>alert(1)</script>",
        clarification="<img src=x onerror=alert(1)>",
        url="javascript:alert(1)",
    )
    log_in(client, "ana@newsroom.example")
    page = client.get("/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # Our own script is the only script element; no item text becomes markup.
    assert page.count("<script") == page.count('<script src="/static/review.js" defer></script>')
    assert "<img" not in page
    assert "javascript:" not in page


def test_the_first_admin_must_change_the_one_time_password_before_seeing_the_queue(
    client: TestClient, db_url: str
) -> None:
    with psycopg.connect(db_url) as conn:
        one_time = ensure_admin(conn)
        assert ensure_admin(conn) is None
    assert one_time
    add_one_pair(db_url)
    assert log_in(client, "admin@localhost", one_time).headers["location"] == "/account/password"
    assert client.get("/").headers["location"] == "/account/password"

    token = csrf_token(client, "/account/password")
    short = {"current_password": one_time, "new_password": "short", "new_password_again": "short"}
    response = client.post("/account/password", data={**short, "csrf_token": token})
    assert response.status_code == 400
    assert "at least 12 characters" in response.text

    change = {
        "current_password": one_time,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
        "csrf_token": token,
    }
    assert client.post("/account/password", data=change).headers["location"] == "/"
    assert RUMOUR in unmarked(client.get("/"))
    assert query(db_url, "SELECT must_change_password FROM users") == [(False,)]
    assert query(db_url, "SELECT action FROM audit_log") == [("user.password_changed",)]
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert log_in(client, "admin@localhost", one_time).status_code == 401
    assert log_in(client, "admin@localhost", NEW_PASSWORD).headers["location"] == "/"


def test_logging_out_ends_the_session(client: TestClient, db_url: str) -> None:
    add_user(db_url, "ana@newsroom.example", "analyst")
    log_in(client, "ana@newsroom.example")
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.headers["location"] == "/login"
    assert client.get("/").headers["location"] == "/login"


def test_the_app_refuses_to_start_on_an_unmigrated_database(unmigrated_db_url: str) -> None:
    refused = pytest.raises(SchemaOutOfDateError, match="tracker db upgrade")
    with refused, TestClient(make_app(unmigrated_db_url)):
        pass


def test_the_app_refuses_to_start_without_a_database_url() -> None:
    refused = pytest.raises(RuntimeError, match="TRACKER_DATABASE_URL is not set")
    with refused, TestClient(make_app(None)):
        pass


def test_the_feeds_page_shows_each_feeds_health_with_errors_as_text(
    client: TestClient, db_url: str
) -> None:
    add_user(db_url, "viewer@newsroom.example", "viewer")
    add_feed(
        db_url,
        "broken",
        titled=False,
        status="not_a_feed",
        last_error="not a feed: <img src=x onerror=alert(1)>",
        error_count=3,
    )
    log_in(client, "viewer@newsroom.example")
    page = client.get("/feeds")
    assert page.status_code == 200
    for shown in ("https://broken.example/rss", "not_a_feed", ">3<"):
        assert shown in page.text
    assert "<img src=x onerror" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
