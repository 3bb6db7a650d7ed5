"""RFC 9457 problem details for the admin routes (and only them: host routes keep theirs)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from pydantic import BaseModel, ConfigDict

from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    HubSchedulerError,
    IllegalTransitionError,
    NotFoundError,
)
from hub_scheduler.entrypoints.api.security import REALM

logger = logging.getLogger("hub_scheduler.api")
PROBLEM_JSON = "application/problem+json"
#: Seconds a client should wait before asking again while the store does not answer.
UNAVAILABLE_RETRY_AFTER = {"Retry-After": "5"}
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


class ProblemView(BaseModel):
    """An RFC 9457 problem. Extension members may follow: ``errors`` (what failed
    validation), ``status_of_queue`` (``down`` when the store does not answer)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str


#: What any guarded route may answer besides its own errors: bad input, no or a bad token,
#: a role that may not, too many requests, the store not answering.
COMMON = (400, 401, 403, 429, 503)


def documented(*statuses: int, common: bool = True) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the problems a route answers: `COMMON` and `statuses`."""
    return {
        status: ResponseSpec(
            ProblemView, description=TITLES[status], media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted({*(COMMON if common else ()), *statuses})
    }  # fmt: skip


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


def bearer_challenge(request: Request[Any, Any, Any], status: int) -> dict[str, str]:
    """The RFC 6750 ``WWW-Authenticate`` challenge of a 401 (``error="invalid_token"`` when
    a token was sent) or of a 403 to a token that lacks the role (``insufficient_scope``)."""
    sent_token = bool(request.headers.get("authorization"))
    if status == 401:
        error = ', error="invalid_token"' if sent_token else ""
    elif status == 403 and sent_token:
        error = ', error="insufficient_scope"'
    else:
        return {}
    return {"WWW-Authenticate": f'Bearer realm="{REALM}"{error}'}


def http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's HTTP errors (auth, guards, validation, rate limits, 404/405) as problems;
    a dict in the exception's ``extra`` adds members to the problem. A 401 carries the
    bearer challenge (a 403 too, for a token without the role), a 503 a Retry-After."""
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        extra["errors"] = exc.extra
    elif isinstance(exc.extra, dict):
        extra.update(exc.extra)
    headers = {**bearer_challenge(request, exc.status_code), **(exc.headers or {})}
    if exc.status_code == 503:
        headers = {**UNAVAILABLE_RETRY_AFTER, **headers}
    return problem(exc.status_code, exc.detail, headers=headers or None, **extra)


def domain_status(exc: HubSchedulerError) -> tuple[int, str]:
    """The HTTP status of a domain error, and what to tell the caller."""
    if isinstance(exc, NotFoundError):
        return 404, str(exc)
    if isinstance(exc, IllegalTransitionError | ConflictError):
        return 409, str(exc)
    if isinstance(exc, BackendUnavailableError):
        return 503, "the store is unavailable; try again shortly"
    return 400, str(exc)  # invalid input (a `ValidationError`) or any other refusal


def domain_problem(
    request: Request[Any, Any, Any], exc: HubSchedulerError
) -> Response[dict[str, Any]]:
    """Domain errors: not found 404, invalid input 400, wrong state 409, store down 503
    (with Retry-After)."""
    del request
    status, detail = domain_status(exc)
    return problem(status, detail, headers=UNAVAILABLE_RETRY_AFTER if status == 503 else None)


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
