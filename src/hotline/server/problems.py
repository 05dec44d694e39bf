"""Every error leaves the server as ``application/problem+json`` (RFC 9457) with a stable code."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hotline.wire.errors import HotlineError, MalformedInput, MethodNotAllowed, NotFound

log = structlog.get_logger("hotline.server")

PROBLEM_JSON = "application/problem+json"


def problem_response(error: HotlineError) -> JSONResponse:
    headers = {}
    retry = error.extra.get("retry_after")
    if retry is not None:
        headers["Retry-After"] = str(int(retry) + 1)
    return JSONResponse(
        error.to_problem(), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


async def handle_hotline_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HotlineError)
    # Only the code and path are logged: details may quote user input.
    log.info("request_refused", code=exc.code, path=request.url.path)
    return problem_response(exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, as problem documents like every other error."""
    assert isinstance(exc, HTTPException)
    error: HotlineError
    if exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    elif exc.status_code == 404:
        error = NotFound(f"no endpoint {request.url.path}; see /openapi.json")
    else:
        error = MalformedInput(str(exc.detail))
    return problem_response(error)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.error("request_failed", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(HotlineError("the server failed; the request was not applied"))
