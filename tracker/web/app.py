"""The FastAPI application factory: settings, database pool, sessions, headers, routes."""

import contextlib
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracker import logs
from tracker.config import Settings, get_settings
from tracker.storage import db, web_sessions
from tracker.web import (
    account_views,
    alerts_views,
    api,
    api_docs,
    auth,
    decision_views,
    errors,
    feed_views,
    item_views,
    label_views,
    login_views,
    model_views,
    ops,
    pair_views,
    queue_views,
    saved_views,
    story_views,
    unsubscribe,
)

STATIC_DIR = Path(__file__).parent / "static"

# No inline scripts or styles anywhere: our own files from /static only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every HTTP response, errors and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's own 422, with the inputs JSON cannot carry (NaN, Infinity, 1e309) echoed as
    text: as numbers they make the error response itself fail, a 500."""
    return JSONResponse(
        status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))}
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """API clients get JSON whatever they accept; everyone else gets errors.http_error."""
    if request.url.path.startswith((api.PREFIX + "/", api.OPENAPI_PATH)):
        return await http_exception_handler(request, exc)
    return await errors.http_error(request, exc)


def database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise RuntimeError("TRACKER_DATABASE_URL is not set; start with `tracker up`")
    return settings.database_url.get_secret_value()


def _lifespan(
    settings: Settings,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.configure(settings.log_format, settings.log_level)
        url = database_url(settings)
        # Refuse to serve on a schema this code does not know (SchemaOutOfDateError says why).
        await run_in_threadpool(db.check_schema, url)
        pool = await run_in_threadpool(db.open_pool, url)
        app.state.pool = app.state.read_pool = pool
        if settings.database_read_url is not None:
            read_url = settings.database_read_url.get_secret_value()
            app.state.read_pool = await run_in_threadpool(db.open_pool, read_url)
        try:
            yield
        finally:
            await run_in_threadpool(pool.close)
            if app.state.read_pool is not pool:
                await run_in_threadpool(app.state.read_pool.close)

    return lifespan


def _served_over_https(settings: Settings) -> bool:
    # Production is assumed to sit behind TLS even when the proxy does not say so.
    public_url = (settings.public_url or "").lower()
    return public_url.startswith("https://") or settings.environment == "production"


def create_app(
    settings: Settings | None = None, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """Build the web app; nothing connects until the server starts it (lifespan).

    `clock` (UTC now by default) times login throttling and token use; tests pass their own."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Rumour Tracker",
        max_body_size=settings.max_body_bytes,
        lifespan=_lifespan(settings),
        # Every non-GET request must carry the session's CSRF token.
        dependencies=[Depends(auth.csrf_protect)],
        exception_handlers={
            StarletteHTTPException: http_error,
            RequestValidationError: validation_error,
            auth.RedirectTo: errors.redirect,
        },
        # The interactive docs need inline and CDN scripts (against our CSP) and no login;
        # tracker.web.api_docs serves the API's OpenAPI document and our own page instead.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.clock = clock or (lambda: datetime.now(UTC))
    # Discovery from the Feeds page fetches with the same policy (allow-list, caps) as polling.
    app.state.settings = settings
    app.state.session_lifetimes = web_sessions.Lifetimes(
        idle=timedelta(hours=settings.session_idle_h),
        absolute=timedelta(hours=settings.session_lifetime_h),
    )
    app.add_middleware(
        auth.SessionCookies,
        secret_key=settings.secret_key.get_secret_value(),
        # The row in web_sessions decides whether a session lives (auth.current_user); the
        # cookie only has to last as long as a row can.
        max_age=int(settings.session_lifetime_h * 3600),
        always_secure=_served_over_https(settings),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(api_docs.ASSETS_PATH, api_docs.assets(), name="api-docs-assets")
    app.include_router(login_views.router)
    app.include_router(queue_views.router)
    app.include_router(decision_views.router)
    app.include_router(label_views.router)
    app.include_router(saved_views.router)
    app.include_router(account_views.router)
    app.include_router(pair_views.router)
    app.include_router(ops.router)
    app.include_router(feed_views.router)
    app.include_router(model_views.router)
    app.include_router(alerts_views.router)
    app.include_router(story_views.router)
    app.include_router(item_views.router)
    # Signs and checks the one-click unsubscribe links of alert emails.
    app.state.secret_key = settings.secret_key
    app.include_router(unsubscribe.router)
    app.include_router(api.router)
    app.include_router(api_docs.docs_router)
    return app
