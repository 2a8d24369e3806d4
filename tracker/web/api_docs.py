"""The API's documentation: its OpenAPI document and our own page listing its endpoints.

No Swagger UI: it loads third-party script from a CDN (against our CSP and our rule of no
third-party JS); the page is rendered on the server from the same OpenAPI document."""

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts

from tracker.domain import ROLES
from tracker.storage.users import User
from tracker.web import auth, views
from tracker.web.api import API_VERSION, DOCS_PATH, OPENAPI_PATH, PREFIX, Viewer

# The docs page is for people: an anonymous browser is sent to log in, as on every page.
DocsViewer = Annotated[User, Depends(auth.require_role(*ROLES))]

docs_router = APIRouter()


def openapi_schema(request: Request) -> dict[str, Any]:
    """The OpenAPI document of the /api/v1 routes only (the HTML pages are not an API)."""
    cached: dict[str, Any] | None = getattr(request.app.state, "api_openapi", None)
    if cached is None:
        # Included routers are branches of the route table; their contexts are the served routes.
        contexts = iter_route_contexts(request.app.routes)
        routes = [c for c in contexts if (c.path or "").startswith(PREFIX)]
        cached = get_openapi(
            title="Rumour Tracker API",
            version=API_VERSION,
            description="Send an API token as `Authorization: Bearer rt_...`.",
            routes=routes,
        )
        request.app.state.api_openapi = cached
    return cached


@docs_router.get(OPENAPI_PATH)
def openapi_json(request: Request, user: Viewer) -> dict[str, Any]:
    return openapi_schema(request)


@dataclass(frozen=True)
class Operation:
    """One method of one path, as the docs page lists it."""

    method: str
    path: str
    summary: str
    description: str
    parameters: list[tuple[str, str, bool, str]]  # name, where, required, type
    has_body: bool


def type_text(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(type_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    return str(schema.get("type", schema.get("format", "any")))


def parameter_rows(op: dict[str, Any]) -> list[tuple[str, str, bool, str]]:
    return [
        (p["name"], p["in"], bool(p.get("required")), type_text(p.get("schema", {})))
        for p in op.get("parameters", [])
    ]


def operations(schema: dict[str, Any]) -> list[Operation]:
    found = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            found.append(
                Operation(
                    method.upper(),
                    path,
                    op.get("summary", ""),
                    op.get("description", ""),
                    parameter_rows(op),
                    "requestBody" in op,
                )
            )
    return found


@docs_router.get(DOCS_PATH, response_class=HTMLResponse)
def docs_page(request: Request, user: DocsViewer) -> HTMLResponse:
    """Our own rendering of the OpenAPI document: no third-party script, works under our CSP."""
    schema = openapi_schema(request)
    return views.render(
        request, "api_docs.html", user, operations=operations(schema), openapi=OPENAPI_PATH
    )
