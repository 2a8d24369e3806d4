"""`tracker users ...`: accounts, roles, one-time passwords and API tokens (all audited)."""

from typing import Annotated, Any

import psycopg
import typer

from tracker.cli.util import choices, connect, fail, one_of, print_json, print_table
from tracker.domain import ROLES
from tracker.storage import api_tokens, audit, users
from tracker.storage.api_tokens import ApiToken
from tracker.storage.users import User
from tracker.usecases import accounts

ACTOR = "cli"
MAX_TOKEN_NAME_CHARS = 200

users_app = typer.Typer(help="Web UI accounts, roles and API tokens.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (Authorization: Bearer ...).", no_args_is_help=True)
users_app.add_typer(tokens_app, name="tokens")

RoleOption = Annotated[str, typer.Option("--role", callback=one_of(ROLES), help=choices(ROLES))]


def _email(email: str) -> str:
    if "@" not in email or any(c in email for c in "\r\n <>"):
        raise fail(f"not an email address: {email!r}")
    return users.normalise_email(email)


def _user(conn: psycopg.Connection, email: str) -> User:
    found = users.get_by_email(conn, email)
    if found is None:
        raise fail(f"there is no user {users.normalise_email(email)}")
    return found


@users_app.command("add")
def users_add(email: str, role: RoleOption) -> None:
    """Add a user; prints a one-time password they must change at first login."""
    email = _email(email)
    password = accounts.one_time_password()
    with connect() as conn, conn.transaction():
        if users.get_by_email(conn, email) is not None:
            raise fail(f"{email} already has an account")
        user = users.create(conn, email, accounts.hash_password(password), role, True)
        audit.record(conn, ACTOR, "user.added", f"user:{user.id}", {"email": email, "role": role})
    typer.echo(f"user {user.id}: {email} ({role})")
    typer.echo(f"one-time password: {password}  (must be changed at first login)")


@users_app.command("reset-password")
def users_reset_password(email: str) -> None:
    """Set a new one-time password (printed); the user's sessions end and they must change it."""
    password = accounts.one_time_password()
    with connect() as conn, conn.transaction():
        user = users.reset_password(conn, _user(conn, email).id, accounts.hash_password(password))
        audit.record(conn, ACTOR, "user.password_reset", f"user:{user.id}")
    typer.echo(f"one-time password for {user.email}: {password}  (must be changed at next login)")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List users with role and state."""
    with connect() as conn:
        found = users.list_all(conn)
    if as_json:
        print_json([_user_json(u) for u in found])
        return
    print_table(
        ("id", "email", "role", "state"), ((u.id, u.email, u.role, _state(u)) for u in found)
    )


def _user_json(u: User) -> dict[str, Any]:
    # Never the password hash.
    return {
        "id": u.id,
        "email": u.email,
        "role": u.role,
        "disabled": u.disabled,
        "must_change_password": u.must_change_password,
        "created_at": u.created_at,
    }


def _state(u: User) -> str:
    if u.disabled:
        return "disabled"
    return "must change password" if u.must_change_password else "active"


@users_app.command("set-role")
def users_set_role(
    email: str, role: Annotated[str, typer.Argument(callback=one_of(ROLES), help=choices(ROLES))]
) -> None:
    """Change a user's role; their sessions end (their tokens never act above the new role)."""
    with connect() as conn, conn.transaction():
        before = _user(conn, email)
        user = users.set_role(conn, before.id, role)
        details = {"from": before.role, "to": role}
        audit.record(conn, ACTOR, "user.role_changed", f"user:{user.id}", details)
    typer.echo(f"{user.email}: {before.role} -> {role}")


def _set_disabled(email: str, disabled: bool) -> None:
    action = "user.disabled" if disabled else "user.enabled"
    with connect() as conn, conn.transaction():
        user = users.set_disabled(conn, _user(conn, email).id, disabled)
        audit.record(conn, ACTOR, action, f"user:{user.id}")
    typer.echo(f"{user.email}: {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable a user: no login, sessions and API tokens stop working at once."""
    _set_disabled(email, True)


@users_app.command("enable")
def users_enable(email: str) -> None:
    """Enable a disabled user again (their unrevoked tokens work again)."""
    _set_disabled(email, False)


@users_app.command("end-sessions")
def users_end_sessions(email: str) -> None:
    """Log a user out everywhere (API tokens are revoked separately)."""
    with connect() as conn, conn.transaction():
        user = users.end_sessions(conn, _user(conn, email).id)
        audit.record(conn, ACTOR, "user.sessions_ended", f"user:{user.id}")
    typer.echo(f"{user.email}: every session ended")


@tokens_app.command("create")
def tokens_create(
    email: str,
    role: RoleOption,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")],
) -> None:
    """Create an API token; it is printed once and only its hash is stored."""
    name = name.strip()[:MAX_TOKEN_NAME_CHARS]
    if not name:
        raise fail("--name must not be empty")
    token = accounts.new_api_token()
    with connect() as conn, conn.transaction():
        user = _user(conn, email)
        _check_token_role(user, role)
        token_id = api_tokens.create(conn, user.id, name, role, accounts.token_digest(token))
        details = {"email": user.email, "name": name, "role": role}
        audit.record(conn, ACTOR, "token.created", f"token:{token_id}", details)
    typer.echo(f"token {token_id} for {user.email} ({role}, {name}); shown only now:")
    typer.echo(token)


def _check_token_role(user: User, role: str) -> None:
    if user.disabled:
        raise fail(f"{user.email} is disabled")
    if not accounts.role_within(role, user.role):
        raise fail(f"a token may not exceed its user's role: {user.email} is {user.role}")


@tokens_app.command("list")
def tokens_list(
    email: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List API tokens (never the tokens themselves)."""
    with connect() as conn:
        user_id = _user(conn, email).id if email else None
        found = api_tokens.listing(conn, user_id)
    if as_json:
        print_json([_token_json(t) for t in found])
        return
    print_table(("id", "email", "role", "name", "state"), (_token_row(t) for t in found))


def _token_row(t: ApiToken) -> tuple[object, ...]:
    used = f"used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
    state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else used
    return t.id, t.email, t.role, t.name, state


def _token_json(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "email": t.email,
        "name": t.name,
        "role": t.role,
        "created_at": t.created_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    }


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke an API token; it stops working at once."""
    with connect() as conn, conn.transaction():
        found = api_tokens.get(conn, token_id)
        if found is None or not api_tokens.revoke(conn, token_id):
            raise fail(f"no unrevoked token {token_id}")
        audit.record(conn, ACTOR, "token.revoked", f"token:{token_id}", {"email": found.email})
    typer.echo(f"token {token_id} revoked")
