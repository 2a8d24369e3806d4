"""Probes and metrics for operators: /healthz (is this process alive?), /readyz (may it take
traffic?) and /metrics.

None needs a login: a probe cannot log in, and /metrics has its own bearer token
(TRACKER_METRICS_TOKEN) so Prometheus needs no user account and /metrics stays closed when it
is unset."""

import functools
import hmac

import psycopg
import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool

from tracker import metrics
from tracker.config import Settings
from tracker.runtime import broker
from tracker.storage import db
from tracker.web import auth

READY_TIMEOUT_S = 3.0
log = structlog.get_logger(__name__)
router = APIRouter()


@functools.cache
def _head_revision() -> str:
    return db.head_revision()


def database_problem(pool: ConnectionPool) -> str | None:
    try:
        with pool.connection(timeout=READY_TIMEOUT_S) as conn:
            current = db.current_revision(conn)
    except psycopg.Error as exc:
        return f"unreachable ({type(exc).__name__})"
    if current != _head_revision():
        return f"schema at revision {current or 'none'}, this code needs {_head_revision()}"
    return None


def broker_problem(settings: Settings) -> str | None:
    if settings.broker_url is None:
        return "TRACKER_BROKER_URL is not set"
    try:
        with broker.connection(settings, timeout_s=READY_TIMEOUT_S):
            return None
    except Exception as exc:  # noqa: BLE001 - whatever stops us reaching it, we are not ready
        return f"unreachable ({type(exc).__name__})"


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 while PostgreSQL (at the schema head) and the broker answer; 503 with the reasons."""
    state = request.app.state
    checks = {
        "database": database_problem(state.pool),
        "broker": broker_problem(state.settings),
    }
    if state.read_pool is not state.pool:
        checks["database_read"] = database_problem(state.read_pool)
    problems = {name: problem for name, problem in checks.items() if problem}
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok", "checks": dict.fromkeys(checks, "ok")})


def _backlog(settings: Settings) -> dict[str, int] | None:
    try:
        with broker.connection(settings, timeout_s=READY_TIMEOUT_S) as conn:
            return broker.queue_lengths(conn)
    except Exception as exc:  # noqa: BLE001 - a scrape without the backlog beats no scrape
        log.warning("queue backlog not read", error=f"{type(exc).__name__}: {exc}")
        return None


def _token_matches(request: Request, settings: Settings) -> bool:
    assert settings.metrics_token is not None
    given = auth.bearer_token(request) or ""
    expected = settings.metrics_token.get_secret_value()
    return hmac.compare_digest(given.encode(), expected.encode())


@router.get("/metrics")
def metrics_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        return JSONResponse({"detail": "Metrics are off: set TRACKER_METRICS_TOKEN."}, 404)
    if not _token_matches(request, settings):
        return JSONResponse(
            {"detail": "Send the metrics token as a Bearer token."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = metrics.render(lambda: _backlog(settings))
    return Response(body, media_type=metrics.CONTENT_TYPE)
