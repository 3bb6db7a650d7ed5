"""Who acts through the web surfaces, and the audit of attempts refused before a use case.

Each mutating route names its `Action` in its ``opt`` (`audited`), so a refused attempt is
recorded with the same vocabulary as the action it tried. Refusals by authentication (401)
and rate limits (429) are raised by middleware; refusals by role guards (403) come back as
responses from the route's own exception handler. `RefusalAudit` records both through
`AdminService.refused` before the request is done: no write is left running in the
background, so there is nothing to drain on shutdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from hub_scheduler.domain.admin import Action, Actor, AdminService
from hub_scheduler.entrypoints.api import problems

#: Where a route's audit facts live in its ``opt``.
AUDIT_OPT = "hub_audit"
#: Statuses that mean "refused before the use case": not signed in, not allowed, too many.
REFUSED_STATUSES = frozenset({401, 403, 429})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_CHANNEL = "api"
#: A refusal the route's exception handler answered, waiting in the scope's state for
#: `RefusalAudit` (exception handlers are synchronous and cannot write it themselves).
_REFUSAL_STATE = "hub_scheduler.refusal"
_REQUEST_ID_MAX = 200


@attrs.frozen
class Audited:
    """What a mutating route does, as the audit trail names it.

    Attributes:
        action: the use case it calls.
        target: the target as a template over the path parameters (``"{name}"``); None
            when the target is in the body, which a refused request is not read for: the
            request path stands in.
    """

    action: Action
    target: str | None = None

    def target_of(self, path_params: Mapping[str, Any], path: str) -> str:
        """The target of one request."""
        return path if self.target is None else self.target.format_map(path_params)


def audited(action: Action, target: str | None = None) -> dict[str, Any]:
    """The ``opt`` of a route that performs `action` on `target` (see `Audited`)."""
    return {AUDIT_OPT: Audited(action, target)}


def attempted(scope: Scope) -> tuple[str, str]:
    """The action and target a request attempted, from its route's `Audited` facts (else
    its method and path)."""
    path = scope["path"]
    handler = scope.get("route_handler")
    facts = handler.opt.get(AUDIT_OPT) if handler is not None else None
    if not isinstance(facts, Audited):
        return f"{scope.get('method')} {path}", path
    return facts.action.value, facts.target_of(scope.get("path_params") or {}, path)


def actor_of(
    connection: ASGIConnection[Any, Any, Any, Any], channel: str, user: object | None = None
) -> Actor:
    """The actor of a request: the subject and roles of `user` (by default the one
    authentication middleware put in the scope; ``anonymous`` without one), the client
    address and the ``X-Request-Id`` header."""
    user = user if user is not None else connection.scope.get("user")
    client = connection.client
    request_id = connection.headers.get("x-request-id")
    return Actor(
        subject=str(getattr(user, "subject", None) or "anonymous"),
        roles=tuple(str(r) for r in getattr(user, "roles", ())),
        channel=channel,
        client=client.host if client else None,
        request_id=request_id[:_REQUEST_ID_MAX] if request_id else None,
    )


def api_actor(request: Request[Any, Any, Any]) -> Actor:
    """Dependency: the actor of an API request."""
    return actor_of(request, API_CHANNEL)


def on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """The admin routes' HTTP errors as problems, noting a refusal for `RefusalAudit`."""
    if exc.status_code in REFUSED_STATUSES:
        request.scope.setdefault("state", {})[_REFUSAL_STATE] = exc.detail
    return problems.http_problem(request, exc)


class RefusalAudit(ASGIMiddleware):
    """Records every refused mutation (401, 403, 429) through `AdminService.refused`.

    Listed before the authentication and rate-limit middleware, so it sees what they raise.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, admin: AdminService) -> None:
        self.admin = admin

    def __deepcopy__(self, memo: dict[int, Any]) -> RefusalAudit:
        # Litestar deep-copies a router when an app registers it; the service (and the
        # connections under it) must be shared, not copied. Nothing here is per request.
        return self

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass the request on; record it afterwards if it was refused."""
        if scope.get("method") in SAFE_METHODS:
            await next_app(scope, receive, send)
            return
        try:
            await next_app(scope, receive, send)
        except HTTPException as exc:
            if exc.status_code in REFUSED_STATUSES:
                await self._record(scope, exc.detail)
            raise
        detail = scope.get("state", {}).pop(_REFUSAL_STATE, None)
        if detail is not None:
            await self._record(scope, str(detail))

    async def _record(self, scope: Scope, detail: str) -> None:
        action, target = attempted(scope)
        actor = actor_of(ASGIConnection[Any, Any, Any, Any](scope), API_CHANNEL)
        await self.admin.refused(actor, action, target, detail)
