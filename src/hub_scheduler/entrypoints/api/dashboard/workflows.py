"""The dashboard's workflows: a page listing them, a page per workflow (its steps as a
table, refreshing itself while it runs), and cancelling one (audited like the API's)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.status_codes import HTTP_200_OK

from hub_scheduler.domain.admin import Action, AdminService
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dashboard.site import SiteDep, ViewerDep
from hub_scheduler.entrypoints.api.dashboard.views import REFRESH, CursorQuery
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep
from hub_scheduler.entrypoints.api.params import Id
from hub_scheduler.entrypoints.api.schemas import WorkflowView

PAGE = 25


async def _workflow_context(admin: AdminService, workflow_id: str) -> dict[str, Any]:
    view = await admin.workflow(workflow_id)
    data = WorkflowView.of(view).model_dump(mode="json")
    members = data["steps"] + ([data["compensation"]] if data["compensation"] else [])
    return {"w": data, "members": members, "live": view.workflow.finished_at is None}


class WorkflowPages(Controller):
    """``/workflows`` and ``/workflows/{id}``; any signed-in role may read them."""

    @get("/workflows")
    async def workflows_page(
        self, site: SiteDep, admin: AdminDep, viewer: ViewerDep, cursor: CursorQuery = ""
    ) -> Response[str]:
        """Workflows newest first, a page at a time, with their steps per state."""
        page = await admin.workflows(cursor or None, PAGE)
        return site.render(
            "workflows_page.html",
            user=viewer.user,
            csrf=viewer.csrf,
            here="workflows",
            items=[WorkflowView.from_domain(w).model_dump(mode="json") for w in page.items],
            next_cursor=page.next_cursor,
            cursor=cursor,
        )

    @get("/workflows/{workflow_id:str}")
    async def workflow_page(
        self, site: SiteDep, admin: AdminDep, viewer: ViewerDep, workflow_id: Id
    ) -> Response[str]:
        """One workflow: each step, its job, what it waits for, its state and its run."""
        return site.render(
            "workflow_page.html",
            user=viewer.user,
            csrf=viewer.csrf,
            here="workflows",
            can_act=viewer.can_act,
            **await _workflow_context(admin, workflow_id),
        )

    @get("/fragments/workflows/{workflow_id:str}")
    async def workflow_fragment(
        self, site: SiteDep, admin: AdminDep, viewer: ViewerDep, workflow_id: Id
    ) -> Response[str]:
        """The steps table of one workflow, as its page refreshes it."""
        return site.render(
            "workflow.html", can_act=viewer.can_act, **await _workflow_context(admin, workflow_id)
        )


class WorkflowActions(Controller):
    """Cancelling a workflow from its page."""

    path = "/actions"

    @post(
        "/workflows/{workflow_id:str}/cancel",
        opt=audited(Action.WORKFLOW_CANCEL, "{workflow_id}"),
        status_code=HTTP_200_OK,
    )
    async def cancel_workflow(
        self, admin: AdminDep, actor: ActorDep, workflow_id: Id
    ) -> Response[str]:
        """Cancel the workflow: steps not started are skipped, unfinished runs cancelled."""
        await admin.cancel_workflow(actor, workflow_id)
        return Response("", headers=REFRESH)
