"""The Models page: every version of the item classifier and pair re-ranker with its metrics,
thresholds and precision-recall curve (an SVG drawn here, on the server); admins activate a
version or roll back. The same functions as `tracker models ...` (tracker.usecases.model_admin)."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from psycopg_pool import ConnectionPool

from tracker.domain import ROLES
from tracker.storage import models
from tracker.storage.users import User
from tracker.usecases import model_admin
from tracker.web import auth, deps

MODELS_PATH = "/models"
MAX_BIGINT = 2**63 - 1
SESSION_FLASH = "models_flash"
# The plot area of a curve, in SVG user units; the axes' labels sit in the margins.
PLOT_LEFT, PLOT_TOP, PLOT_WIDTH, PLOT_HEIGHT = 40, 10, 200, 150

AnyUser = Annotated[User, Depends(auth.require_role(*ROLES))]
Admin = Annotated[User, Depends(auth.require_role("admin"))]
Pool = Annotated[ConnectionPool, Depends(auth.get_pool)]
ModelId = Annotated[int, PathParam(ge=1, le=MAX_BIGINT)]

router = APIRouter()


@dataclass(frozen=True)
class Curve:
    """A precision-recall curve as an SVG polyline's points, in the plot area's units."""

    points: str
    count: int


@dataclass(frozen=True)
class ModelRow:
    model: models.ModelInfo
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    curve: Curve | None


def _unit(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def pr_curve(metadata: dict[str, Any]) -> Curve | None:
    """The stored curve as points to draw; None for models trained before curves were kept
    (or with a malformed one: metadata is data, not code, and is checked before drawing)."""
    stored = metadata.get("pr_curve")
    if not isinstance(stored, dict):
        return None
    precision, recall = stored.get("precision"), stored.get("recall")
    if not isinstance(precision, list) or not isinstance(recall, list) or not precision:
        return None
    pairs = [(_unit(r), _unit(p)) for r, p in zip(recall, precision, strict=False)]
    if len(precision) != len(recall) or any(r is None or p is None for r, p in pairs):
        return None
    points = " ".join(
        f"{PLOT_LEFT + r * PLOT_WIDTH:.1f},{PLOT_TOP + (1 - p) * PLOT_HEIGHT:.1f}"
        for r, p in pairs
        if r is not None and p is not None
    )
    return Curve(points, len(pairs))


def model_row(model: models.ModelInfo) -> ModelRow:
    def as_dict(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    return ModelRow(
        model,
        as_dict(model.metadata.get("validation")),
        as_dict(model.metadata.get("thresholds")),
        pr_curve(model.metadata),
    )


def page(
    request: Request,
    user: User,
    pool: ConnectionPool,
    status_code: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    with pool.connection() as conn:
        found = models.list_models(conn)
    return deps.render(
        request,
        "models.html",
        user,
        status_code=status_code,
        rows=[model_row(m) for m in found],
        kinds=model_admin.KINDS,
        is_admin=user.role == "admin",
        error=error,
        notice=request.session.pop(SESSION_FLASH, None),
        plot=(PLOT_LEFT, PLOT_TOP, PLOT_WIDTH, PLOT_HEIGHT),
        settings=request.app.state.settings,
    )


@router.get(MODELS_PATH, response_class=HTMLResponse)
def models_page(request: Request, user: AnyUser, pool: Pool) -> HTMLResponse:
    return page(request, user, pool)


@router.post(MODELS_PATH + "/{model_id}/activate", response_model=None)
def activate(
    request: Request, model_id: ModelId, user: Admin, pool: Pool
) -> HTMLResponse | RedirectResponse:
    with pool.connection() as conn:
        model = models.info(conn, model_id)
        if model is None:
            raise HTTPException(404, "There is no such model.")
        try:
            model_admin.activate(conn, model.version, user.email)
        except model_admin.ActivationRefused as exc:
            return page(request, user, pool, 409, error=f"Not activated: {exc}.")
    request.session[SESSION_FLASH] = f"{model.version} is now the active {model.kind} model."
    return deps.see_other(MODELS_PATH)


@router.post(MODELS_PATH + "/rollback", response_model=None)
def rollback(
    request: Request, user: Admin, pool: Pool, kind: Annotated[str, Form()] = ""
) -> HTMLResponse | RedirectResponse:
    with pool.connection() as conn:
        try:
            version = model_admin.rollback(conn, kind, user.email)
        except model_admin.ActivationRefused as exc:
            return page(request, user, pool, 409, error=f"Not rolled back: {exc}.")
    request.session[SESSION_FLASH] = f"Rolled back: {version} is the active {kind} model again."
    return deps.see_other(MODELS_PATH)
