"""RFC 9457 problem details for the admin routes (and only them: host routes keep theirs)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    HubSchedulerError,
    IllegalTransitionError,
    NotFoundError,
    ValidationError,
)

logger = logging.getLogger("hub_scheduler.api")
PROBLEM_JSON = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's HTTP errors (auth, guards, validation, rate limits, 404/405) as problems."""
    del request
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        extra["errors"] = exc.extra
    headers = dict(exc.headers or {})
    return problem(exc.status_code, exc.detail, headers=headers or None, **extra)


def domain_problem(
    request: Request[Any, Any, Any], exc: HubSchedulerError
) -> Response[dict[str, Any]]:
    """Domain errors: not found 404, invalid input 400, wrong state 409, store down 503."""
    del request
    if isinstance(exc, NotFoundError):
        return problem(404, str(exc))
    if isinstance(exc, ValidationError):
        return problem(400, str(exc))
    if isinstance(exc, IllegalTransitionError):
        return problem(409, str(exc))
    if isinstance(exc, BackendUnavailableError):
        return problem(503, "the store is unavailable; try again shortly")
    return problem(400, str(exc))


def internal_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Anything unexpected: logged in full, answered without internals."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    HTTPException: http_problem,
    HubSchedulerError: domain_problem,
    Exception: internal_problem,
}

__all__ = ["EXCEPTION_HANDLERS", "MediaType", "problem"]
