"""Access control on a real PostgreSQL: every route's role, login throttling, API tokens,
revocable sessions, CSRF and cookie flags."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr
from starlette.routing import Mount

from tests.factories import PASSWORD, add_one_pair, add_user, csrf_token, log_in, logged_in
from tracker.config import Settings
from tracker.domain import ROLES
from tracker.storage import api_tokens, users
from tracker.usecases import accounts
from tracker.web import auth
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

ERROR_LINE = re.compile(r'<p class="error" role="alert">([^<]*)</p>')
ROLE_REFUSAL = "Your role may not do this."
CSRF_REFUSAL = "Missing or wrong CSRF token."
LOCKED = "Too many failed logins"
WEAKEST_FIRST = sorted(ROLES, key=accounts.ROLE_RANK.__getitem__)

# Routes anyone may call, each for a reason: logging in, health probes (a probe cannot log in),
# our own CSS/JS, the one-click unsubscribe links of alert emails (their signed token is the
# authority) and /metrics (TRACKER_METRICS_TOKEN is the authority; test_ops_endpoints.py).
PUBLIC_ROUTES = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/unsubscribe/{token}"),
    ("POST", "/unsubscribe/{token}"),
}
# Our own CSS/JS, and Swagger UI's files from a pip package (the /api/docs page needs a login).
PUBLIC_MOUNTS = {"/static", "/api/docs/assets"}
# API routes answer a missing login with 401 JSON whatever the client accepts: no login page.
API_PREFIXES = ("/api/v1/", "/api/openapi.json")


class Clock:
    """The web app's clock, moved on by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Web:
    app: FastAPI
    clock: Clock
    db_url: str

    def client(
        self, address: str = "testclient", base_url: str = "http://testserver"
    ) -> TestClient:
        # The app's lifespan (and pool) is already running in the fixture's client.
        return TestClient(
            self.app, follow_redirects=False, client=(address, 50000), base_url=base_url
        )


def make_app(db_url: str, clock: Clock, **settings: Any) -> FastAPI:
    return create_app(
        Settings(database_url=SecretStr(db_url), secret_key=SecretStr("x" * 40), **settings),
        clock=clock,
    )


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    clock = Clock()
    app = make_app(db_url, clock)
    with TestClient(app):
        yield Web(app, clock, db_url)


def add_token(db_url: str, email: str, role: str) -> tuple[int, str]:
    token = accounts.new_api_token()
    with psycopg.connect(db_url) as conn:
        user = users.get_by_email(conn, email)
        assert user is not None
        return api_tokens.create(conn, user.id, "test", role, accounts.token_digest(token)), token


def query(db_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(statement, params).fetchall()


def error_line(response: httpx.Response) -> str:
    found = ERROR_LINE.search(response.text)
    assert found, response.text
    return found.group(1)


# --- the route table -------------------------------------------------------------------------


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def route_roles(dependant: Dependant) -> frozenset[str] | None:
    """The roles a route admits: those every one of its role dependencies allows; None: none."""
    found = [
        d.call.roles for d in _dependencies(dependant) if isinstance(d.call, auth.RoleDependency)
    ]
    return frozenset.intersection(*found) if found else None


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    roles: frozenset[str] | None

    @property
    def path(self) -> str:
        # "1" fits every path parameter we have (ids and tokens).
        return re.sub(r"\{[^}]+\}", "1", self.template)


def endpoints(app: FastAPI) -> tuple[list[Endpoint], list[str]]:
    """Every method of every route, and the routes the walk cannot classify.

    FastAPI keeps included routers as branches; iter_route_contexts flattens them into the
    routes as served, with the dependencies of the app, the include and the route combined."""
    found, unknown = [], []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount) and route.path in PUBLIC_MOUNTS:
            continue
        if not isinstance(route, APIRoute):
            unknown.append(f"{type(route).__name__} {context.path!r}")
            continue
        roles = route_roles(context.dependant)
        for method in sorted(context.methods - {"HEAD"}):
            found.append(Endpoint(method, context.path, roles))
    return found, unknown


def unprotected(app: FastAPI) -> list[str]:
    found, unknown = endpoints(app)
    loose = [
        f"{e.method} {e.template}"
        for e in found
        if e.roles is None and (e.method, e.template) not in PUBLIC_ROUTES
    ]
    return loose + unknown


def protected(app: FastAPI) -> list[Endpoint]:
    return [e for e in endpoints(app)[0] if e.roles is not None]


def send(
    client: TestClient, e: Endpoint, csrf: str | None, accept: str, bearer: str | None = None
) -> httpx.Response:
    headers = {"accept": accept}
    if csrf is not None:
        headers["x-csrf-token"] = csrf
    if bearer is not None:
        headers["authorization"] = f"Bearer {bearer}"
    return client.request(e.method, e.path, headers=headers)


def test_every_route_has_a_role_dependency_or_is_on_the_public_list(web: Web) -> None:
    assert unprotected(web.app) == []
    declared = {(e.method, e.template) for e in endpoints(web.app)[0]}
    assert declared >= PUBLIC_ROUTES, "a public route is gone: update PUBLIC_ROUTES"
    assert len(protected(web.app)) >= 8


def test_the_walk_reports_a_new_route_that_forgot_its_role(web: Web) -> None:
    app = make_app(web.db_url, web.clock)

    @app.get("/forgot")
    def forgot() -> dict[str, str]:
        return {}

    @app.post("/pairs/{pair_id}/forgot", dependencies=[])
    def forgot_too(pair_id: int) -> dict[str, str]:
        return {}

    assert unprotected(app) == ["GET /forgot", "POST /pairs/{pair_id}/forgot"]


def test_every_protected_route_refuses_anonymous_requests(web: Web) -> None:
    client = web.client()
    for e in protected(web.app):
        # A valid CSRF token, so what refuses the request is the missing login, not CSRF.
        html = send(client, e, csrf_token(client), "text/html")
        if e.template.startswith(API_PREFIXES):
            assert html.status_code == 401, f"{e.method} {e.path}: {html.status_code}"
            assert html.json() == {"detail": "Log in first."}
        else:
            assert html.status_code == 303, f"{e.method} {e.path}: {html.status_code}"
            assert html.headers["location"] == auth.LOGIN_PATH, f"{e.method} {e.path}"
        api = send(client, e, csrf_token(client), "application/json")
        assert api.status_code == 401, f"{e.method} {e.path}: {api.status_code}"


def test_every_protected_route_refuses_a_weaker_role_by_session_and_by_token(web: Web) -> None:
    sessions, tokens = {}, {}
    for role in ROLES:
        add_user(web.db_url, f"{role}@newsroom.example", role)
        sessions[role] = logged_in(web.client(), f"{role}@newsroom.example")
        tokens[role] = add_token(web.db_url, f"{role}@newsroom.example", role)[1]
    refused = 0
    for e in protected(web.app):
        assert e.roles
        for role in set(ROLES) - e.roles:
            client = sessions[role]
            response = send(client, e, csrf_token(client, "/"), "text/html")
            assert response.status_code == 403, f"{role} {e.method} {e.path}"
            assert ROLE_REFUSAL in response.text
            bearer = {"authorization": f"Bearer {tokens[role]}", "accept": "application/json"}
            response = web.client().request(e.method, e.path, headers=bearer)
            assert response.status_code == 403, f"{role} token {e.method} {e.path}"
            refused += 1
    assert refused > 0, "no route needs more than the weakest role: the walk tests nothing"


def test_the_weakest_admitted_role_gets_past_every_routes_role_check(web: Web) -> None:
    for role in ROLES:
        add_user(web.db_url, f"{role}@newsroom.example", role)
    for e in protected(web.app):
        assert e.roles
        weakest = next(role for role in WEAKEST_FIRST if role in e.roles)
        # A fresh session each time: some routes (logging out) end the one they are sent with.
        client = logged_in(web.client(), f"{weakest}@newsroom.example")
        response = send(client, e, csrf_token(client, "/account/password"), "text/html")
        assert response.status_code != 401, f"{e.method} {e.path}"
        assert ROLE_REFUSAL not in response.text, f"{e.method} {e.path}"
        if response.status_code == 303:
            assert response.headers["location"] != auth.LOGIN_PATH or e.template.startswith(
                (auth.LOGOUT_PATH, auth.LOGOUT_EVERYWHERE_PATH)
            ), f"{e.method} {e.path}"


def test_every_state_changing_route_refuses_a_session_without_the_csrf_token(web: Web) -> None:
    add_user(web.db_url, "admin@newsroom.example", "admin")
    client = logged_in(web.client(), "admin@newsroom.example")
    unsafe = [
        e
        for e in endpoints(web.app)[0]
        if e.method not in auth.SAFE_METHODS
        and not e.template.startswith(auth.CSRF_EXEMPT_PREFIXES)
    ]
    assert ("POST", "/login") in {(e.method, e.template) for e in unsafe}
    for e in unsafe:
        for csrf in (None, "forged"):
            response = send(client, e, csrf, "application/json")
            assert response.status_code == 403, f"{e.method} {e.path}"
            assert response.json()["detail"] == CSRF_REFUSAL
        # A made-up bearer header does not stand in for the CSRF token (logout, login included).
        response = send(client, e, None, "application/json", bearer="rt_made_up")
        assert response.status_code == 401, f"{e.method} {e.path}"
    assert client.get("/").status_code == 200, "the session survived every refused request"


# Bookkeeping of a request itself, not state a GET may change: when a session or token was last
# used. Every other table must read the same before and after any GET.
USE_BOOKKEEPING = {"web_sessions", "api_tokens"}


def table_digests(db_url: str) -> dict[str, str]:
    """A digest of every table's rows, to tell whether anything at all changed."""
    with psycopg.connect(db_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        digests = {}
        for table in sorted(set(tables) - USE_BOOKKEEPING):
            statement = sql.SQL(
                "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"
            ).format(sql.Identifier(table))
            row = conn.execute(statement).fetchone()
            assert row is not None
            digests[table] = str(row[0])
        return digests


def test_no_get_route_changes_anything_for_any_role(web: Web) -> None:
    """The route table's other half: state changes only on non-GET routes, which need the CSRF
    token or a valid bearer token (the test above). A suggested pair waits in the queue, so a
    page that claimed it on GET would be caught."""
    add_one_pair(web.db_url)
    gets = [e for e in endpoints(web.app)[0] if e.method == "GET"]
    assert ("GET", "/") in {(e.method, e.template) for e in gets}
    for role in WEAKEST_FIRST:
        add_user(web.db_url, f"{role}@newsroom.example", role)
        session = logged_in(web.client(), f"{role}@newsroom.example")
        token = add_token(web.db_url, f"{role}@newsroom.example", role)[1]
        before = table_digests(web.db_url)
        for e in gets:
            for accept in ("text/html", "application/json"):
                send(session, e, None, accept)
                send(web.client(), e, None, accept, bearer=token)
            changed = [t for t, d in table_digests(web.db_url).items() if before.get(t) != d]
            assert changed == [], f"{role}: GET {e.path} changed {changed}"


# --- login throttling --------------------------------------------------------------------------


def test_the_sixth_attempt_is_refused_even_with_the_right_password(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    add_user(web.db_url, "bob@newsroom.example", "analyst")
    client = web.client()
    for _ in range(4):
        response = log_in(client, "ana@newsroom.example", "wrong password!")
        assert response.status_code == 401
        assert error_line(response) == "Wrong email or password."
    fifth = log_in(client, "ana@newsroom.example", "wrong password!")
    assert fifth.status_code == 429
    assert error_line(fifth) == "Too many failed logins. Try again in 15 minutes."
    assert fifth.headers["retry-after"] == "900"
    sixth = log_in(client, "ana@newsroom.example", PASSWORD)
    assert sixth.status_code == 429
    assert LOCKED in sixth.text
    assert client.get("/").headers["location"] == auth.LOGIN_PATH
    assert log_in(web.client(), "bob@newsroom.example").headers["location"] == "/"
    locks = query(web.db_url, "SELECT actor, action, target FROM audit_log")
    assert locks == [("login-throttle", "login.locked", "account:ana@newsroom.example")]


def test_an_unknown_email_is_locked_with_the_same_words(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    pages = {}
    for email in ("ana@newsroom.example", "nobody@newsroom.example"):
        client = web.client()
        for _ in range(5):
            log_in(client, email, "wrong password!")
        response = log_in(client, email, PASSWORD)
        pages[email] = (response.status_code, error_line(response))
    assert pages["ana@newsroom.example"] == pages["nobody@newsroom.example"]
    assert pages["ana@newsroom.example"][0] == 429


def test_the_lock_expires_and_grows_when_repeated(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    client = web.client()
    for _ in range(5):
        log_in(client, "ana@newsroom.example", "wrong password!")
    web.clock.advance(minutes=14, seconds=59)
    assert log_in(client, "ana@newsroom.example").status_code == 429
    web.clock.advance(seconds=2)
    for _ in range(5):
        log_in(client, "ana@newsroom.example", "wrong password!")
    # The second lock in a row lasts twice as long.
    web.clock.advance(minutes=16)
    assert error_line(log_in(client, "ana@newsroom.example")).endswith("in 14 minutes.")
    web.clock.advance(minutes=14, seconds=1)
    assert log_in(client, "ana@newsroom.example").headers["location"] == "/"


def test_a_successful_login_clears_the_accounts_count(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    for _ in range(2):
        for _ in range(4):
            assert log_in(web.client(), "ana@newsroom.example", "wrong!").status_code == 401
        assert log_in(web.client(), "ana@newsroom.example").status_code == 303


def test_failures_outside_the_window_are_not_counted_together(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    for _ in range(4):
        log_in(web.client(), "ana@newsroom.example", "wrong password!")
    web.clock.advance(minutes=16)
    for _ in range(4):
        assert log_in(web.client(), "ana@newsroom.example", "wrong!").status_code == 401
    assert log_in(web.client(), "ana@newsroom.example").status_code == 303


def test_one_address_trying_many_accounts_is_locked_and_other_addresses_are_not(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    attacker = web.client(address="203.0.113.9")
    statuses = [
        log_in(attacker, f"guess{n}@newsroom.example", "wrong password!").status_code
        for n in range(20)
    ]
    assert statuses == [401] * 19 + [429]
    assert log_in(attacker, "ana@newsroom.example").status_code == 429
    assert log_in(web.client(address="198.51.100.7"), "ana@newsroom.example").status_code == 303
    targets = query(web.db_url, "SELECT target FROM audit_log WHERE action = 'login.locked'")
    assert targets == [("address:203.0.113.9",)]


def test_the_limit_holds_across_web_processes(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    other_process = make_app(web.db_url, web.clock)
    with TestClient(other_process, follow_redirects=False) as other:
        for _ in range(3):
            assert log_in(other, "ana@newsroom.example", "wrong password!").status_code == 401
        for _ in range(2):
            log_in(web.client(), "ana@newsroom.example", "wrong password!")
        assert log_in(other, "ana@newsroom.example").status_code == 429


def test_odd_login_input_gets_a_message_not_an_error(web: Web) -> None:
    client = web.client()
    token = csrf_token(client)
    for form in (
        {"email": "x" * 100_000, "password": "y"},
        {"email": "\x00'; DROP TABLE users; --", "password": ""},
        {},
    ):
        response = client.post("/login", data={**form, "csrf_token": token})
        assert response.status_code == 401


# --- API tokens --------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/json"}


def test_a_token_works_as_a_bearer_header_without_csrf_and_records_its_use(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    token_id, token = add_token(web.db_url, "ana@newsroom.example", "analyst")
    client = web.client()
    assert client.get("/", headers=bearer(token)).status_code == 200
    # Past authentication and CSRF into the handler, which finds no such pair.
    decision = client.post(
        "/pairs/99/decision", data={"decision": "confirm"}, headers=bearer(token)
    )
    assert decision.status_code == 404
    assert "set-cookie" not in decision.headers
    used = query(web.db_url, "SELECT last_used_at FROM api_tokens WHERE id = %s", token_id)
    assert used == [(web.clock.now,)]


def test_a_token_is_accepted_only_in_the_authorization_header(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    _, token = add_token(web.db_url, "ana@newsroom.example", "analyst")
    client = web.client()
    json = {"accept": "application/json"}
    assert client.get(f"/?token={token}", headers=json).status_code == 401
    assert client.get("/", headers={**json, "authorization": f"Token {token}"}).status_code == 401
    assert client.get("/", headers=bearer(token + "x")).status_code == 401
    assert client.get("/", headers=bearer("")).status_code == 401


def test_a_revoked_token_stops_working(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    token_id, token = add_token(web.db_url, "ana@newsroom.example", "analyst")
    assert web.client().get("/", headers=bearer(token)).status_code == 200
    with psycopg.connect(web.db_url) as conn:
        assert api_tokens.revoke(conn, token_id)
    response = web.client().get("/", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_acts_with_its_own_role_and_never_above_its_user(web: Web) -> None:
    user_id = add_user(web.db_url, "ana@newsroom.example", "admin")
    _, viewer_token = add_token(web.db_url, "ana@newsroom.example", "viewer")
    _, admin_token = add_token(web.db_url, "ana@newsroom.example", "admin")
    form = {"decision": "confirm"}
    client = web.client()
    assert (
        client.post("/pairs/1/decision", data=form, headers=bearer(viewer_token)).status_code == 403
    )
    assert (
        client.post("/pairs/1/decision", data=form, headers=bearer(admin_token)).status_code == 404
    )
    with psycopg.connect(web.db_url) as conn:
        users.set_role(conn, user_id, "viewer")
    assert (
        client.post("/pairs/1/decision", data=form, headers=bearer(admin_token)).status_code == 403
    )


def test_a_disabled_users_tokens_stop_working(web: Web) -> None:
    user_id = add_user(web.db_url, "ana@newsroom.example", "analyst")
    _, token = add_token(web.db_url, "ana@newsroom.example", "analyst")
    with psycopg.connect(web.db_url) as conn:
        users.set_disabled(conn, user_id, True)
    assert web.client().get("/", headers=bearer(token)).status_code == 401
    with psycopg.connect(web.db_url) as conn:
        users.set_disabled(conn, user_id, False)
    assert web.client().get("/", headers=bearer(token)).status_code == 200


def test_the_token_string_is_nowhere_in_the_database(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    _, token = add_token(web.db_url, "ana@newsroom.example", "analyst")
    web.client().get("/", headers=bearer(token))
    secret = token.removeprefix(accounts.TOKEN_PREFIX)
    tables = query(web.db_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    with psycopg.connect(web.db_url) as conn:
        for (table,) in tables:
            statement = sql.SQL("SELECT coalesce(string_agg(t::text, ' '), '') FROM {} t")
            dump = conn.execute(statement.format(sql.Identifier(table))).fetchone()
            assert dump is not None
            assert secret not in dump[0], table
            assert secret.encode().hex() not in dump[0], table
    stored = query(web.db_url, "SELECT token_hash FROM api_tokens")
    assert stored == [(accounts.token_digest(token),)]


# --- sessions ----------------------------------------------------------------------------------


def test_a_session_stops_working_after_a_password_reset(web: Web) -> None:
    user_id = add_user(web.db_url, "ana@newsroom.example", "analyst")
    client = logged_in(web.client(), "ana@newsroom.example")
    assert client.get("/").status_code == 200
    with psycopg.connect(web.db_url) as conn:
        users.reset_password(conn, user_id, accounts.hash_password("one time password"))
    assert client.get("/").headers["location"] == auth.LOGIN_PATH
    assert client.get("/", headers={"accept": "application/json"}).status_code == 401


def test_a_role_change_or_disabling_ends_the_users_sessions(web: Web) -> None:
    user_id = add_user(web.db_url, "ana@newsroom.example", "analyst")
    client = logged_in(web.client(), "ana@newsroom.example")
    with psycopg.connect(web.db_url) as conn:
        users.set_role(conn, user_id, "viewer")
    assert client.get("/").headers["location"] == auth.LOGIN_PATH
    client = logged_in(web.client(), "ana@newsroom.example")
    with psycopg.connect(web.db_url) as conn:
        users.set_disabled(conn, user_id, True)
    assert client.get("/").headers["location"] == auth.LOGIN_PATH
    refused = log_in(web.client(), "ana@newsroom.example")
    assert refused.status_code == 403
    assert "disabled" in error_line(refused)


def test_logging_out_everywhere_ends_the_sessions_on_other_devices(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    laptop, phone = (
        logged_in(web.client(), "ana@newsroom.example"),
        logged_in(web.client(), "ana@newsroom.example"),
    )
    response = laptop.post(
        auth.LOGOUT_EVERYWHERE_PATH, data={"csrf_token": csrf_token(laptop, "/")}
    )
    assert response.headers["location"] == auth.LOGIN_PATH
    assert phone.get("/").headers["location"] == auth.LOGIN_PATH
    assert laptop.get("/").headers["location"] == auth.LOGIN_PATH
    assert logged_in(web.client(), "ana@newsroom.example").get("/").status_code == 200
    actions = query(web.db_url, "SELECT actor, action FROM audit_log")
    assert actions == [("ana@newsroom.example", "user.sessions_ended")]


def test_changing_ones_password_keeps_this_session_and_ends_the_others(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    laptop, phone = (
        logged_in(web.client(), "ana@newsroom.example"),
        logged_in(web.client(), "ana@newsroom.example"),
    )
    form = {
        "current_password": PASSWORD,
        "new_password": "a brand new password",
        "new_password_again": "a brand new password",
        "csrf_token": csrf_token(laptop, "/"),
    }
    assert laptop.post(auth.PASSWORD_PATH, data=form).headers["location"] == "/"
    assert laptop.get("/").status_code == 200
    assert phone.get("/").headers["location"] == auth.LOGIN_PATH


def session_cookie(response: httpx.Response) -> set[str]:
    """The attributes of the session's Set-Cookie header, lower-cased, without the value."""
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    found = [c for c in cookies if c.startswith("session=")]
    assert found, cookies
    return {part.strip().lower() for part in found[0].split(";")[1:]}


def test_session_cookies_are_httponly_and_samesite_and_secure_only_over_https(web: Web) -> None:
    add_user(web.db_url, "ana@newsroom.example", "analyst")
    plain = session_cookie(log_in(web.client(), "ana@newsroom.example"))
    assert "httponly" in plain
    assert "samesite=lax" in plain
    assert "secure" not in plain
    tls = session_cookie(log_in(web.client(base_url="https://testserver"), "ana@newsroom.example"))
    assert "secure" in tls
    assert "httponly" in tls


def test_a_public_https_url_makes_cookies_secure_even_behind_a_plain_http_proxy(
    db_url: str,
) -> None:
    app = make_app(db_url, Clock(), public_url="https://tracker.example.org")
    with TestClient(app, follow_redirects=False) as client:
        assert "secure" in session_cookie(client.get("/login"))
