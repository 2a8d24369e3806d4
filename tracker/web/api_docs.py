"""The API's documentation: its OpenAPI document and the interactive Swagger UI over it.

Swagger UI's files (version 5, which reads the OpenAPI 3.1 FastAPI writes) come from the
`fastapi-offline` pip package's static folder, served from this app: no CDN, nothing copied
into the tree. Our own script starts it (no inline script, as our CSP wants). Both the page
and the document need a login, like every page."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles

from tracker.domain import ROLES
from tracker.storage.users import User
from tracker.web import auth, deps
from tracker.web.api import API_VERSION, DOCS_PATH, OPENAPI_PATH, PREFIX, Viewer

# The docs page is for people: an anonymous browser is sent to log in, as on every page.
DocsViewer = Annotated[User, Depends(auth.require_role(*ROLES))]
ASSETS_PATH = DOCS_PATH + "/assets"
DESCRIPTION = """JSON under `/api/v1`. Send an API token (`tracker users tokens create`) as
`Authorization: Bearer rt_...`, or use the API from a logged-in browser session (then unsafe
requests need the page's CSRF token in `X-CSRF-Token`).

Lists return `{"items": [...], "next_cursor": ...}`: pass `next_cursor` back as `cursor` for
the next page; `limit` is at most 500. Feed URLs are shown with keys and passwords masked."""

docs_router = APIRouter()


def assets() -> StaticFiles:
    """Swagger UI's own files, from the package's static folder, mounted at ASSETS_PATH."""
    return StaticFiles(packages=[("fastapi_offline", "static")])


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
            description=DESCRIPTION,
            routes=routes,
        )
        request.app.state.api_openapi = cached
    return cached


@docs_router.get(OPENAPI_PATH)
def openapi_json(request: Request, user: Viewer) -> dict[str, Any]:
    return openapi_schema(request)


@docs_router.get(DOCS_PATH, response_class=HTMLResponse)
def docs_page(request: Request, user: DocsViewer) -> HTMLResponse:
    """Swagger UI over the OpenAPI document: every route with its parameters, body and
    response schemas, and "Try it out" with this browser's session."""
    return deps.render(request, "api_docs.html", user, openapi=OPENAPI_PATH, assets=ASSETS_PATH)
