"""The admin dashboard: server-rendered HTML fragments refreshed by a vendored htmx.

No build step and no CDN: templates live in ``templates/``, htmx in ``static/``. Sessions and
CSRF are in `site`; the pages, fragments and actions in `views`. A `JobViewer` sees no action
buttons, and the actions refuse (and audit) anyone without a session, the CSRF header or the
SystemAdmin role. Every request but the static assets' is rate limited like the API's,
before the session is checked, in the same budget (a principal's API calls and dashboard
actions count together).
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.entrypoints.api.auditing import RefusalAudit, RefusalLog
from hub_scheduler.entrypoints.api.dashboard.live import Live
from hub_scheduler.entrypoints.api.dashboard.site import (
    ASSETS,
    CHANNEL,
    Site,
    current_session,
    dashboard_actor,
    signed_in,
)
from hub_scheduler.entrypoints.api.dashboard.views import Actions, Fragments, Pages
from hub_scheduler.entrypoints.api.dashboard.workflows import WorkflowActions, WorkflowPages
from hub_scheduler.entrypoints.api.dependencies import hub_dependencies, provide_value
from hub_scheduler.entrypoints.api.limits import Requester, rate_limits
from hub_scheduler.hub import Hub


def dashboard_router(
    hub: Hub,
    secret: str,
    *,
    path: str = "/admin",
    rate_limit_reads: int = 300,
    rate_limit_mutations: int = 60,
    rate_limit_store: str = "hub_scheduler_rate_limit",
) -> Router:
    """The dashboard for `hub` at `path`, signing sessions with the API's JWT `secret`.

    Its pages count as reads and its actions (and sign-in) as mutations, per principal of
    the session cookie, else per client address, in the store named `rate_limit_store`
    (the admin router's: a principal has one budget for both).
    """
    site = Site(secret, path)
    requester = Requester(site.cookie_principal)
    # Asset URLs carry a hash of the file (site.asset), so a browser may keep them a year.
    static = create_static_files_router(
        path="/static", directories=[str(ASSETS)], include_in_schema=False,
        cache_control=CacheControlHeader(max_age=365 * 24 * 3600, public=True),
    )  # fmt: skip
    return Router(
        path=path,
        route_handlers=[Pages, Fragments, Actions, WorkflowPages, WorkflowActions, Live, static],
        dependencies={
            **hub_dependencies(hub),
            "site": provide_value(site),
            "session": Provide(current_session, sync_to_thread=False),
            "viewer": Provide(signed_in, sync_to_thread=False),
            "actor": Provide(dashboard_actor, sync_to_thread=False),
        },
        middleware=[
            RefusalAudit(RefusalLog(hub.admin, rate_limit_store, requester), CHANNEL),
            # The assets hold no data and a page needs eight of them: not limited.
            *rate_limits(
                rate_limit_reads,
                rate_limit_mutations,
                rate_limit_store,
                requester,
                exclude=[r"/static/"],
            ),
        ],
        # Named one by one: the most specific class wins across layers, and the standalone
        # app maps these to problem+json, which a fragment must not become.
        exception_handlers={
            HTTPException: site.error,
            HubSchedulerError: site.error,
            Exception: site.error,
        },
        include_in_schema=False,
    )


__all__ = ["dashboard_router"]
