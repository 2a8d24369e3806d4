"""`tracker users ...` and `tracker users tokens ...` against the test database and web app."""

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import run_tracker
from tests.factories import log_in
from tracker.config import Settings
from tracker.usecases import accounts
from tracker.web import auth
from tracker.web.app import create_app

pytestmark = pytest.mark.integration

ONE_TIME = re.compile(r"one-time password(?: for \S+)?: (\S+)")


@pytest.fixture
def web(db_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=SecretStr(db_url), secret_key=SecretStr("x" * 40))
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def tracker(env: dict[str, str], *args: str) -> str:
    done = run_tracker(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(env: dict[str, str], *args: str) -> str:
    done = run_tracker(*args, env=env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    return done.stderr


def one_time_password(output: str) -> str:
    found = ONE_TIME.search(output)
    assert found, output
    return found.group(1)


def landing(login: httpx.Response) -> str:
    """Where the login form sends the browser ("" when it refuses)."""
    return login.headers.get("location", "")


def audit(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, action, target, details FROM audit_log ORDER BY id"
    ).fetchall()


def user_row(conn: psycopg.Connection, email: str) -> tuple[Any, ...]:
    row = conn.execute(
        """SELECT id, role, must_change_password, disabled_at IS NOT NULL, session_epoch
           FROM users WHERE email = %s""",
        (email,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_an_added_user_gets_a_one_time_password_to_change_at_first_login(
    conn: psycopg.Connection, cli_env: dict[str, str], web: TestClient
) -> None:
    out = tracker(cli_env, "users", "add", "Ana@Newsroom.example", "--role", "analyst")
    password = one_time_password(out)
    user_id, role, must_change, disabled, _ = user_row(conn, "ana@newsroom.example")
    assert (role, must_change, disabled) == ("analyst", True, False)
    assert landing(log_in(web, "ana@newsroom.example", password)) == auth.PASSWORD_PATH
    assert audit(conn) == [
        (
            "cli",
            "user.added",
            f"user:{user_id}",
            {"email": "ana@newsroom.example", "role": "analyst"},
        )
    ]
    assert "already has an account" in refused(
        cli_env, "users", "add", "ana@newsroom.example", "--role", "viewer"
    )
    boss = run_tracker("users", "add", "bob@x.example", "--role", "boss", env=cli_env)
    assert boss.returncode == 2 and "'boss' is not one of admin, analyst," in boss.stderr
    assert "not an email address" in refused(cli_env, "users", "add", "bob", "--role", "viewer")


def test_a_password_reset_prints_a_new_one_time_password_and_ends_sessions(
    conn: psycopg.Connection, cli_env: dict[str, str], web: TestClient
) -> None:
    first = one_time_password(tracker(cli_env, "users", "add", "ana@x.example", "--role", "admin"))
    epoch = user_row(conn, "ana@x.example")[4]
    second = one_time_password(tracker(cli_env, "users", "reset-password", "ana@x.example"))
    assert second != first
    assert landing(log_in(web, "ana@x.example", first)) == ""
    assert landing(log_in(web, "ana@x.example", second)) == auth.PASSWORD_PATH
    user_id, _, must_change, _, new_epoch = user_row(conn, "ana@x.example")
    assert must_change and new_epoch > epoch
    assert ("cli", "user.password_reset", f"user:{user_id}", {}) in audit(conn)
    assert "no user nobody@x.example" in refused(
        cli_env, "users", "reset-password", "nobody@x.example"
    )


def test_users_are_listed_without_their_password_hashes(
    conn: psycopg.Connection, cli_env: dict[str, str]
) -> None:
    with conn.transaction():
        admin_password = accounts.ensure_admin(conn)
    assert admin_password
    tracker(cli_env, "users", "add", "vic@x.example", "--role", "viewer")
    listed = json.loads(tracker(cli_env, "users", "list", "--json"))
    assert [(u["email"], u["role"], u["must_change_password"]) for u in listed] == [
        ("admin@localhost", "admin", True),
        ("vic@x.example", "viewer", True),
    ]
    text = tracker(cli_env, "users", "list")
    assert "must change password" in text
    hashes = [row[0] for row in conn.execute("SELECT password_hash FROM users")]
    for shown in (text, json.dumps(listed)):
        assert "argon2" not in shown
        assert not any(h in shown for h in hashes)


def test_a_role_change_is_audited_with_before_and_after(
    conn: psycopg.Connection, cli_env: dict[str, str]
) -> None:
    tracker(cli_env, "users", "add", "ana@x.example", "--role", "viewer")
    epoch = user_row(conn, "ana@x.example")[4]
    assert "viewer -> analyst" in tracker(cli_env, "users", "set-role", "ana@x.example", "analyst")
    user_id, role, _, _, new_epoch = user_row(conn, "ana@x.example")
    assert role == "analyst" and new_epoch > epoch
    assert audit(conn)[-1] == (
        "cli",
        "user.role_changed",
        f"user:{user_id}",
        {"from": "viewer", "to": "analyst"},
    )
    root = run_tracker("users", "set-role", "ana@x.example", "root", env=cli_env)
    assert root.returncode == 2 and "'root' is not one of admin, analyst," in root.stderr


def test_a_disabled_user_cannot_log_in_until_enabled_again(
    conn: psycopg.Connection, cli_env: dict[str, str], web: TestClient
) -> None:
    password = one_time_password(
        tracker(cli_env, "users", "add", "ana@x.example", "--role", "analyst")
    )
    tracker(cli_env, "users", "disable", "ana@x.example")
    assert user_row(conn, "ana@x.example")[3] is True
    assert landing(log_in(web, "ana@x.example", password)) == ""
    tracker(cli_env, "users", "enable", "ana@x.example")
    assert landing(log_in(web, "ana@x.example", password)) == auth.PASSWORD_PATH
    actions = [row[1] for row in audit(conn)]
    assert actions == ["user.added", "user.disabled", "user.enabled"]


def test_ending_a_users_sessions_logs_them_out(
    conn: psycopg.Connection, cli_env: dict[str, str], web: TestClient
) -> None:
    password = one_time_password(
        tracker(cli_env, "users", "add", "ana@x.example", "--role", "analyst")
    )
    log_in(web, "ana@x.example", password)
    assert web.get(auth.PASSWORD_PATH).status_code == 200
    tracker(cli_env, "users", "end-sessions", "ana@x.example")
    assert web.get(auth.PASSWORD_PATH).headers["location"] == auth.LOGIN_PATH
    assert audit(conn)[-1][1] == "user.sessions_ended"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/json"}


def test_a_token_is_printed_once_stored_hashed_listed_and_revoked(
    conn: psycopg.Connection, cli_env: dict[str, str], web: TestClient
) -> None:
    tracker(cli_env, "users", "add", "ana@x.example", "--role", "analyst")
    out = tracker(
        cli_env, "users", "tokens", "create", "ana@x.example", "--role", "viewer", "--name", "ci"
    )
    token = out.strip().splitlines()[-1]
    assert token.startswith(accounts.TOKEN_PREFIX)
    assert web.get("/", headers=bearer(token)).status_code == 200
    stored = conn.execute("SELECT id, role, name, token_hash FROM api_tokens").fetchall()
    assert [row[:3] for row in stored] == [(1, "viewer", "ci")]
    assert bytes(stored[0][3]) == accounts.token_digest(token)

    listed = json.loads(tracker(cli_env, "users", "tokens", "list", "ana@x.example", "--json"))
    assert [(t["id"], t["email"], t["role"], t["name"]) for t in listed] == [
        (1, "ana@x.example", "viewer", "ci")
    ]
    assert listed[0]["last_used_at"] is not None
    everything = tracker(cli_env, "users", "tokens", "list")
    assert "ci" in everything
    assert token not in everything
    assert token not in json.dumps(listed)

    tracker(cli_env, "users", "tokens", "revoke", "1")
    assert web.get("/", headers=bearer(token)).status_code == 401
    assert "no unrevoked token 1" in refused(cli_env, "users", "tokens", "revoke", "1")
    assert "revoked" in tracker(cli_env, "users", "tokens", "list")
    actions = [(row[1], row[2]) for row in audit(conn)]
    assert actions[-2:] == [("token.created", "token:1"), ("token.revoked", "token:1")]
    assert token not in json.dumps([row[3] for row in audit(conn)])


def test_a_token_may_not_exceed_its_users_role_nor_belong_to_a_disabled_user(
    conn: psycopg.Connection, cli_env: dict[str, str]
) -> None:
    tracker(cli_env, "users", "add", "vic@x.example", "--role", "viewer")
    create = ("users", "tokens", "create", "vic@x.example", "--name", "n")
    assert "may not exceed its user's role" in refused(cli_env, *create, "--role", "analyst")
    tracker(cli_env, "users", "disable", "vic@x.example")
    assert "is disabled" in refused(cli_env, *create, "--role", "viewer")
    assert "no user" in refused(
        cli_env, "users", "tokens", "create", "x@x.example", "--role", "viewer", "--name", "n"
    )
    assert conn.execute("SELECT count(*) FROM api_tokens").fetchone() == (0,)
