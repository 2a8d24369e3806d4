"""XSS and SQL-injection payloads through every form field, query and path parameter and JSON
body of the app, found by walking the route table (routes added later are covered as they come).

As an admin with a session and its CSRF token, each parameter in turn gets each payload while
the others keep a working value. No answer may be a 5xx; HTML must not carry a payload
unescaped (at once or on a later page, once stored); JSON errors must be well formed; redirects
stay on this site; and every table and seeded row is still there afterwards."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tests import tally
from tests.factories import add_feed, add_item, add_pair, add_story, add_user, csrf_token, log_in
from tests.integration.test_access import Clock, make_app
from tests.tally import counted

pytestmark = pytest.mark.integration

ADMIN = "admin@newsroom.example"
PAYLOADS = [
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR 1=1 --",
    "'; DROP TABLE items; --",
    '1; DROP TABLE pairs; SELECT "',
    "1' UNION SELECT password_hash FROM users --",
    "javascript:alert(1)",
    "//evil.example/",
    "a\x00b",
    "\x00",
    "\u202eevil\u202c \U0001d54f \ufdfd",
    "%00%27%3Cscript%3E",
    "{{7*7}}${7*7}",
    "../../../../etc/passwd",
    "x" * 100_000,
    "-1",
    "0",
    "9223372036854775808",
    "-9223372036854775809",
    "1e309",
    "NaN",
    "",
]
# Characters that would let a reflected payload become markup or break out of an attribute.
MARKUP = re.compile(r"[<>\"']")
# A working value for each field the forms and the API know, so one bad field at a time is what
# the handler sees; a field nobody listed (a new route's) gets an empty string.
WORKING = {
    "decision": "reject",
    "reason": "not the same claim",
    "label": "other",
    "name": "my view",
    "query": "status=all",
    "keywords": "f-16",
    "tags": "defence",
    "feed_kind": "media",
    "languages": "en",
    "min_score": "0.5",
    "delivery": "immediate",
    "at": "08:00",
    "tz": "UTC",
    "action": "subscribe",
    "back": "/",
}
# Parameters a handler reads from the request itself rather than declaring (the queue's filters).
UNDECLARED_QUERY = {
    "/": ("status", "language", "kind", "tag", "score_min", "score_max", "from", "to")
}
LOGIN_PATHS = ("/login",)
# Each request to these verifies a password (argon2, slow by design): one pass, as HTML, is enough.
PASSWORD_PATHS = ("/login", "/account/password")
MAX_URL_PAYLOAD = 8000  # httpx refuses longer URL parts, as servers do


@dataclass
class Target:
    method: str
    template: str
    path: list[str] = field(default_factory=list)
    query: list[str] = field(default_factory=list)
    form: list[str] = field(default_factory=list)
    json_fields: list[str] = field(default_factory=list)

    @property
    def slots(self) -> list[tuple[str, str]]:
        return [
            *(("path", p) for p in self.path),
            *(("query", q) for q in self.query),
            *(("form", f) for f in self.form),
            *(("json", j) for j in self.json_fields),
        ]


def _all(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _all(dependency)


def targets(app: FastAPI) -> list[Target]:
    """Every method of every route with at least one parameter an attacker controls."""
    found = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        parts = list(_all(context.dependant))
        for method in sorted(context.methods - {"HEAD"}):
            target = Target(method, context.path)
            target.path = [p.alias for d in parts for p in d.path_params]
            declared = [p.alias for d in parts for p in d.query_params]
            target.query = declared + list(UNDECLARED_QUERY.get(context.path, ()))
            for body in (p for d in parts for p in d.body_params):
                model = body.field_info.annotation
                if isinstance(body.field_info, params.Form):
                    target.form.append(body.alias)
                elif isinstance(model, type) and issubclass(model, BaseModel):
                    target.json_fields.extend(model.model_fields)
            if target.slots:
                found.append(target)
    return found


@dataclass
class World:
    app: FastAPI
    db_url: str
    ids: dict[str, str]
    seeded: dict[str, int]
    tables: set[str]
    logins: int = 0

    def admin(self) -> tuple[TestClient, str]:
        client = TestClient(
            self.app,
            follow_redirects=False,
            client=("198.51.100.1", 50000),
            raise_server_exceptions=False,
        )
        # The walk's password-form payloads are wrong current passwords, which count against
        # the admin's account as failed logins do: each admin session starts unthrottled.
        with psycopg.connect(self.db_url) as conn:
            conn.execute("DELETE FROM login_throttle")
        assert log_in(client, ADMIN).status_code == 303
        return client, csrf_token(client, "/account/password")

    def stranger(self) -> tuple[TestClient, str]:
        # Login payloads fail; a fresh address each few keeps the address throttle out of it.
        self.logins += 1
        address = f"203.0.113.{self.logins // 10 + 1}"
        client = TestClient(
            self.app,
            follow_redirects=False,
            client=(address, 50000),
            raise_server_exceptions=False,
        )
        return client, csrf_token(client)


def rows(db_url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(statement).fetchall()


def table_names(db_url: str) -> set[str]:
    found = rows(db_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {name for (name,) in found}


@pytest.fixture
def world(conn: psycopg.Connection, db_url: str) -> Iterator[World]:
    add_user(db_url, ADMIN, "admin")
    media, official = add_feed(conn, "courier", "media"), add_feed(conn, "ministry", "official")
    story = add_story(conn, "F-16s over Ukraine")
    rumour = add_item(conn, media, "Romanian F-16s fly secret missions", story_id=story)
    clarification = add_item(conn, official, "The ministry says the report was misrepresented")
    pair = add_pair(conn, rumour, clarification)
    ids = {
        "pair_id": str(pair),
        "item_id": str(rumour),
        "story_id": str(story),
        "feed": str(media),
    }
    seeded = {"feeds": 2, "items": 2, "pairs": 1, "stories": 1, "users": 1}
    app = make_app(db_url, Clock())
    with TestClient(app):
        yield World(app, db_url, ids, seeded, table_names(db_url))


def request(
    client: TestClient, csrf: str, target: Target, ids: dict[str, str], slot: tuple[str, str],
    payload: str, accept: str,
) -> httpx.Response:  # fmt: skip
    where, name = slot
    path = target.template
    for param in target.path:
        value = payload if slot == ("path", param) else ids.get(param, "1")
        path = path.replace("{" + param + "}", quote(value, safe="") or "%20")
    query = {name: payload} if where == "query" else {}
    headers = {"accept": accept, "x-csrf-token": csrf}
    form = {f: WORKING.get(f, ids.get(f, "")) for f in target.form}
    if where == "form":
        form[name] = payload
    if target.json_fields:
        body = {f: WORKING.get(f, "") for f in target.json_fields}
        if where == "json":
            body[name] = payload
        return client.request(target.method, path, params=query, json=body, headers=headers)
    if target.method == "GET":
        return client.get(path, params=query, headers=headers)
    data = {**form, "csrf_token": csrf}
    return client.request(target.method, path, params=query, data=data, headers=headers)


def problems_with(response: httpx.Response, payload: str) -> list[str]:
    found = []
    kind = response.headers.get("content-type", "")
    if response.status_code >= 500:
        found.append(f"answered {response.status_code}")
    if "text/html" in kind and MARKUP.search(payload) and payload in response.text:
        found.append("reflected the payload unescaped in HTML")
    if "json" in kind:
        try:
            document = response.json()
        except json.JSONDecodeError:
            found.append("sent JSON that does not parse")
        else:
            if response.status_code >= 400 and not (
                isinstance(document, dict) and "detail" in document
            ):
                found.append(f"sent a JSON error without detail: {document!r:.200}")
    location = response.headers.get("location")
    if location is not None and (
        not location.startswith("/") or location.startswith(("//", "/\\"))
    ):
        found.append(f"redirected off the site to {location[:100]!r}")
    return found


def accepts(target: Target) -> list[str]:
    """As a browser would ask, and as our script's fetch calls (JSON) for the forms."""
    if target.template.startswith("/api/"):
        return ["application/json"]
    if target.method == "GET" or target.template in PASSWORD_PATHS:
        return ["text/html"]
    return ["text/html", "application/json"]


def walk_payloads(world: World) -> list[str]:
    failures = []
    admin, csrf = world.admin()
    for target, accept in ((t, a) for t in targets(world.app) for a in accepts(t)):
        group = "payloads: API" if target.template.startswith("/api/") else "payloads: web"
        for slot in target.slots:
            for whole in PAYLOADS:
                payload = whole[:MAX_URL_PAYLOAD] if slot[0] in ("path", "query") else whole
                client, token = (
                    world.stranger() if target.template in LOGIN_PATHS else (admin, csrf)
                )
                response = request(client, token, target, world.ids, slot, payload, accept)
                found = problems_with(response, payload)
                # The walk goes on past a failure, so that one run lists them all.
                tally.TRIED[group] += 1
                if found:
                    tally.FAILED[group] += 1
                    failures.append(
                        f"{target.method} {target.template} {slot[0]} {slot[1]}="
                        f"{payload[:40]!r} as {accept}: {'; '.join(found)}"
                    )
    return failures


def stored_payloads_on_later_pages(world: World) -> list[str]:
    """Pages that show what the walk stored (subscriptions, views, reasons) must escape it."""
    admin, _ = world.admin()
    pages = ["/", "/?status=all", "/pairs", "/feeds", "/alerts", "/alerts/outbox"]
    found = []
    for page in pages:
        text = admin.get(page, headers={"accept": "text/html"}).text
        found += [f"{page} shows {p[:40]!r}" for p in PAYLOADS if MARKUP.search(p) and p in text]
    return found


def assert_intact(world: World) -> None:
    assert table_names(world.db_url) == world.tables
    for table, count in world.seeded.items():
        (have,) = rows(world.db_url, f"SELECT count(*) FROM {table}")[0]
        assert have >= count, f"{table} lost rows"
    assert rows(world.db_url, "SELECT email, role FROM users") == [(ADMIN, "admin")]


def test_the_walk_finds_every_kind_of_parameter(world: World) -> None:
    found = {(t.method, t.template): t for t in targets(world.app)}
    assert found[("POST", "/login")].form == ["email", "password"]
    assert found[("GET", "/api/v1/items")].query[:2] == ["q", "label"]
    assert found[("POST", "/api/v1/pairs/{pair_id}/decision")].json_fields == [
        "decision",
        "reason",
    ]
    assert "score_min" in found[("GET", "/")].query
    assert found[("POST", "/items/{item_id}/label")].path == ["item_id"]
    assert len(found) >= 20


def test_the_checks_would_catch_a_5xx_a_reflection_a_bad_json_error_and_an_open_redirect() -> None:
    payload = PAYLOADS[1]
    html = {"content-type": "text/html; charset=utf-8"}
    assert problems_with(httpx.Response(500), payload) == ["answered 500"]
    assert problems_with(httpx.Response(200, headers=html, text=f"<p>{payload}</p>"), payload)
    assert not problems_with(httpx.Response(200, headers=html, text="<p>&lt;x&gt;</p>"), payload)
    assert problems_with(httpx.Response(400, json=["no detail"]), payload)
    assert problems_with(httpx.Response(303, headers={"location": "//evil.example/"}), payload)


def test_every_parameter_of_every_route_survives_every_payload(world: World) -> None:
    assert walk_payloads(world) == []
    assert stored_payloads_on_later_pages(world) == []
    assert_intact(world)


def test_malformed_json_bodies_get_a_well_formed_json_error(world: World) -> None:
    admin, csrf = world.admin()
    headers = {"accept": "application/json", "content-type": "application/json"}
    headers["x-csrf-token"] = csrf
    bodies = [
        b"",
        b"{",
        b"[]",
        b"null",
        b'"x"',
        b"1e309",
        b'{"reason": NaN}',
        b'{"decision": []}',
        b"\xff\xfe",
    ]
    bodies += [json.dumps(p).encode() for p in PAYLOADS[:4]] + [b"[" * 100_000]
    for target in (t for t in targets(world.app) if t.json_fields):
        path = re.sub(r"\{[^}]+\}", world.ids["pair_id"], target.template)
        for body in bodies:
            with counted("payloads: API"):
                response = admin.request(target.method, path, content=body, headers=headers)
                assert 400 <= response.status_code < 500, (target.template, body[:40])
                assert problems_with(response, body.decode("utf-8", "replace")) == []
    assert_intact(world)
