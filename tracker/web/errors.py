"""How the pages answer an error: a page for browsers, JSON for API clients and our script;
and the redirect auth raises (to the login or the password page)."""

from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracker.web import auth
from tracker.web.deps import see_other, templates


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Errors as a page for browsers, as JSON for API clients."""
    if not auth.wants_html(request):
        return await http_exception_handler(request, exc)
    context = {"status": exc.status_code, "message": str(exc.detail), "user": None}
    return templates.TemplateResponse(
        request, "error.html", context, status_code=exc.status_code, headers=exc.headers
    )


async def redirect(request: Request, exc: auth.RedirectTo) -> Response:
    return see_other(exc.location)
