"""The standalone admin app: the admin router, OpenAPI, a shared rate-limit store."""

from __future__ import annotations

import functools
import secrets
import sys
from typing import Any

from litestar import Litestar
from litestar.openapi.config import OpenAPIConfig
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from hub_scheduler import __version__
from hub_scheduler.entrypoints.api import problems
from hub_scheduler.entrypoints.api.dashboard import dashboard_router
from hub_scheduler.entrypoints.api.limits import limit_store
from hub_scheduler.entrypoints.api.routes import admin_router
from hub_scheduler.entrypoints.api.security import bearer_principal, jwt_auth
from hub_scheduler.entrypoints.settings import MIN_SECRET_LENGTH, Settings
from hub_scheduler.hub import Hub

RATE_LIMIT_STORE = "hub_scheduler_rate_limit"


class InsecureSecretError(ValueError):
    """The JWT secret is missing or too short for a real deployment."""


@functools.cache
def process_secret() -> str:
    """A random signing secret for this process: tokens signed with it die with it."""
    return secrets.token_urlsafe(48)


def _demo_secret(hub: Hub | None) -> str | None:
    # The bundled demo is the hub of its own module, imported already by whoever serves it.
    demo = sys.modules.get("hub_scheduler.demo")
    if hub is None or demo is None or hub is not getattr(demo, "hub", None):
        return None
    return str(demo.SECRET)


def jwt_secret(settings: Settings, hub: Hub | None = None) -> str:
    """The signing secret: ``HUB_SCHEDULER_JWT_SECRET``. Without one, on memory:// only,
    the bundled demo's published secret for the demo's own `hub`, and for any other app a
    random secret of this process (`process_secret`). Anywhere else a missing or short
    secret raises `InsecureSecretError`."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    if len(secret) >= MIN_SECRET_LENGTH:
        return secret
    if settings.is_memory and not secret:
        return _demo_secret(hub) or process_secret()
    raise InsecureSecretError(
        f"set HUB_SCHEDULER_JWT_SECRET to at least {MIN_SECRET_LENGTH} random characters"
        " (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
    )


def create_app(hub: Hub, settings: Settings | None = None, **litestar_options: Any) -> Litestar:
    """The admin API for `hub` as its own app (OpenAPI 3.1 at ``/schema/openapi.json``),
    with the dashboard at ``/admin``.

    Behind reverse proxies listed in ``settings.trusted_proxies``, their X-Forwarded-For
    and X-Forwarded-Proto give the client address (for rate limits and the audit trail)
    and the scheme (for the session cookie's Secure flag); from anyone else, and without
    the setting, both headers are ignored.
    """
    settings = settings or Settings(url=hub.url, prefix=hub.prefix)
    secret = jwt_secret(settings, hub)
    auth = jwt_auth(secret)
    reads, mutations = settings.rate_limit_reads, settings.rate_limit_mutations
    router = admin_router(
        hub,
        auth_middleware=[auth.middleware],
        principal_of=bearer_principal(secret),
        rate_limit_reads=reads,
        rate_limit_mutations=mutations,
        rate_limit_store=RATE_LIMIT_STORE,
    )
    dashboard = dashboard_router(
        hub,
        secret,
        rate_limit_reads=reads,
        rate_limit_mutations=mutations,
        rate_limit_store=RATE_LIMIT_STORE,
    )
    middleware = list(litestar_options.pop("middleware", []))
    if networks := settings.proxy_networks:
        middleware.insert(0, functools.partial(ProxyHeadersMiddleware, trusted_hosts=networks))
    return Litestar(
        route_handlers=[router, dashboard],
        middleware=middleware,
        # The whole standalone app is ours, so unknown paths and methods are problems too
        # (a host app that mounts the router keeps its own format for those).
        exception_handlers=dict(problems.EXCEPTION_HANDLERS),
        stores={RATE_LIMIT_STORE: limit_store(hub.backend.shared, f"{hub.prefix}-rate-limit")},
        openapi_config=OpenAPIConfig(
            title="hub_scheduler admin API",
            version=__version__,
            path="/schema",
            components=[auth.openapi_components],
            security=[auth.security_requirement],
        ),
        **litestar_options,
    )
