"""Server-side web sessions: a copied cookie dies with its session, sessions expire when idle
and at their absolute lifetime, and users see and end their own sessions."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.factories import PASSWORD, add_user, csrf_token, log_in
from tests.integration.test_web import query
from tracker.config import Settings
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

ANA = "ana@newsroom.example"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(db_url: str, clock: Clock) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=SecretStr(db_url),
        secret_key=SecretStr("x" * 40),
        session_idle_h=2,
        session_lifetime_h=24,
    )
    app = create_app(settings, clock=clock)
    with TestClient(app):  # runs the lifespan (the pool) once for every client below
        yield app


def browser(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


def logged_in(client: TestClient) -> bool:
    return bool(client.get("/").status_code == 200)


def copy_of(app: FastAPI, client: TestClient) -> TestClient:
    """Another browser holding the same cookie, as a thief with a copy of it would."""
    thief = browser(app)
    thief.cookies.set("session", client.cookies["session"])
    return thief


def test_a_copied_cookie_stops_working_when_its_user_logs_out(app: FastAPI, db_url: str) -> None:
    add_user(db_url, ANA, "analyst")
    ana = browser(app)
    log_in(ana, ANA)
    thief = copy_of(app, ana)
    assert logged_in(thief)

    ana.post("/logout", data={"csrf_token": csrf_token(ana, "/")})

    assert not logged_in(ana)
    assert thief.get("/account/password").headers["location"] == "/login"
    assert query(db_url, "SELECT count(*) FROM web_sessions") == [(0,)]


def test_the_cookie_names_a_random_id_and_the_table_keeps_only_its_digest(
    app: FastAPI, db_url: str
) -> None:
    add_user(db_url, ANA, "analyst")
    ana = browser(app)
    log_in(ana, ANA)
    [(digest, user_agent)] = query(db_url, "SELECT digest, user_agent FROM web_sessions")
    assert len(digest) == 32
    assert user_agent == "testclient"
    assert digest.hex() not in ana.cookies["session"]


def test_a_session_ends_after_the_idle_timeout_and_lives_while_used(
    app: FastAPI, db_url: str, clock: Clock
) -> None:
    add_user(db_url, ANA, "analyst")
    ana = browser(app)
    log_in(ana, ANA)
    for _ in range(5):  # used every 100 minutes: never idle for 2 hours
        clock.now += timedelta(minutes=100)
        assert logged_in(ana)
    clock.now += timedelta(hours=2, seconds=1)
    assert not logged_in(ana)


def test_no_request_keeps_a_stolen_cookie_alive_past_the_absolute_lifetime(
    app: FastAPI, db_url: str, clock: Clock
) -> None:
    add_user(db_url, ANA, "analyst")
    ana = browser(app)
    log_in(ana, ANA)
    thief = copy_of(app, ana)
    # Each request within the idle timeout, and each re-issues the cookie (a flash message).
    while clock.now < START + timedelta(hours=23):
        clock.now += timedelta(hours=1)
        token = csrf_token(thief, "/alerts")
        thief.post("/alerts", data={"csrf_token": token, "keywords": "f-16"})
        assert logged_in(thief)
    clock.now = START + timedelta(hours=24, seconds=1)
    assert not logged_in(thief)
    assert not logged_in(ana)


def test_users_see_their_sessions_and_end_one_without_ending_the_other(
    app: FastAPI, db_url: str
) -> None:
    add_user(db_url, ANA, "analyst")
    laptop, phone = browser(app), browser(app)
    log_in(laptop, ANA)
    phone.headers["user-agent"] = "Phone browser 1.0"
    log_in(phone, ANA)

    page = laptop.get("/account/password").text
    assert page.count('action="/account/sessions/') == 2
    assert "Phone browser 1.0" in page
    assert page.count("(this session)") == 1

    [(phone_session,)] = query(
        db_url, "SELECT id FROM web_sessions WHERE user_agent = 'Phone browser 1.0'"
    )
    token = csrf_token(laptop, "/account/password")
    ended = laptop.post(f"/account/sessions/{phone_session}/end", data={"csrf_token": token})
    assert ended.headers["location"] == "/account/password"
    assert "The session has ended." in laptop.get("/account/password").text
    assert not logged_in(phone)
    assert logged_in(laptop)
    audit = query(db_url, "SELECT actor, action FROM audit_log ORDER BY id")
    assert audit == [(ANA, "user.session_ended")]


def test_nobody_ends_another_users_session(app: FastAPI, db_url: str) -> None:
    add_user(db_url, ANA, "analyst")
    add_user(db_url, "bob@newsroom.example", "admin")
    ana, bob = browser(app), browser(app)
    log_in(ana, ANA)
    log_in(bob, "bob@newsroom.example")
    [(ana_session,)] = query(
        db_url,
        "SELECT s.id FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = %s",
        ANA,
    )
    token = csrf_token(bob, "/account/password")
    refused = bob.post(f"/account/sessions/{ana_session}/end", data={"csrf_token": token})
    assert refused.status_code == 404
    assert logged_in(ana)
    # Without the CSRF token, not even one's own session is ended.
    assert ana.post(f"/account/sessions/{ana_session}/end").status_code == 403
    assert logged_in(ana)


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(
    app: FastAPI, db_url: str
) -> None:
    add_user(db_url, ANA, "analyst")
    laptop, phone = browser(app), browser(app)
    log_in(laptop, ANA)
    log_in(phone, ANA)
    new = "a different long password"
    form = {"current_password": PASSWORD, "new_password": new, "new_password_again": new}
    token = csrf_token(laptop, "/account/password")
    assert laptop.post("/account/password", data={**form, "csrf_token": token}).is_redirect
    assert "Your password is changed; your other sessions have ended." in laptop.get("/").text
    assert logged_in(laptop)
    assert not logged_in(phone)
    assert query(db_url, "SELECT count(*) FROM web_sessions") == [(1,)]


def test_logging_out_everywhere_ends_every_session(app: FastAPI, db_url: str) -> None:
    add_user(db_url, ANA, "analyst")
    laptop, phone = browser(app), browser(app)
    log_in(laptop, ANA)
    log_in(phone, ANA)
    token = csrf_token(phone, "/account/password")
    assert phone.post("/account/logout-everywhere", data={"csrf_token": token}).is_redirect
    assert not logged_in(laptop)
    assert not logged_in(phone)
    assert query(db_url, "SELECT count(*) FROM web_sessions") == [(0,)]
