"""The admin API for one `Hub`: `admin_router(hub)` is what a host app mounts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Router
from litestar.exceptions import HTTPException
from litestar.plugins.prometheus import PrometheusConfig

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.entrypoints.api import problems
from hub_scheduler.entrypoints.api.auditing import RefusalAudit, RefusalLog, on_http_error
from hub_scheduler.entrypoints.api.bodies import BoundedJSONRequest
from hub_scheduler.entrypoints.api.controllers import CONTROLLERS
from hub_scheduler.entrypoints.api.dependencies import api_dependencies
from hub_scheduler.entrypoints.api.limits import PrincipalOf, Requester, rate_limits
from hub_scheduler.hub import Hub


def admin_router(
    hub: Hub,
    *,
    path: str = "/api/v1",
    auth_middleware: Sequence[Any] = (),
    rate_limit_reads: int = 300,
    rate_limit_mutations: int = 60,
    rate_limit_store: str = "hub_scheduler_rate_limit",
    principal_of: PrincipalOf | None = None,
) -> Router:
    """The admin API for `hub` under `path`.

    Every mutation goes through ``hub.admin`` and is audited there (channel ``api``); a
    mutation refused by authentication, role or rate limit is audited as refused (at most
    once a minute per requester, see `RefusalLog`). The rate limits run before
    authentication: a request counts as the principal its credentials prove, else as its
    client address.

    Args:
        hub: the hub whose jobs, queue and schedules the routes operate on (and whose
            audit log records what admins do).
        auth_middleware: authentication middleware putting a user with ``subject`` and
            ``roles`` in ``request.user`` (the JWT middleware by default; a host app may pass
            its own).
        rate_limit_reads: read requests per principal per minute.
        rate_limit_mutations: mutations per principal per minute.
        rate_limit_store: name of the Litestar store the limits (and the refusals between
            two audit entries) are counted in (register a store shared by your processes
            under this name to share the limits).
        principal_of: how the limiter, which runs before authentication, reads the
            principal from a request's credentials (`bearer_principal(secret)` for the JWT
            middleware). Without it a request counts as its client address, unless
            authentication ran before the router (a user in the scope).
    """
    requester = Requester(principal_of)
    return Router(
        path=path,
        route_handlers=list(CONTROLLERS),
        dependencies=api_dependencies(hub),
        request_class=BoundedJSONRequest,
        middleware=[
            PrometheusConfig(
                app_name="hub_scheduler", prefix="hub_scheduler_http", group_path=True
            ).middleware,
            RefusalAudit(RefusalLog(hub.admin, rate_limit_store, requester)),
            *rate_limits(rate_limit_reads, rate_limit_mutations, rate_limit_store, requester),
            *auth_middleware,
        ],
        exception_handlers={
            HTTPException: on_http_error,
            HubSchedulerError: problems.domain_problem,
            Exception: problems.internal_problem,
        },
    )
