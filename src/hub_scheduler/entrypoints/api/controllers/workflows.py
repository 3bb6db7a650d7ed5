"""Workflows: listing, one workflow with its steps' runs, cancelling one."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.status_codes import HTTP_200_OK

from hub_scheduler.domain.admin import Action
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep
from hub_scheduler.entrypoints.api.params import Cursor, Id, Limit
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import WorkflowPage, WorkflowView
from hub_scheduler.entrypoints.api.security import can_act, can_read


class WorkflowsController(Controller):
    """``/workflows`` and ``/workflows/{workflow_id}``."""

    path = "/workflows"
    tags = ("workflows",)
    guards = (can_read,)

    @get("/", responses=documented())
    async def list_workflows(
        self, admin: AdminDep, limit: Limit = 50, cursor: Cursor = None
    ) -> WorkflowPage:
        """Workflows newest first, each with its steps' states; pass `next_cursor` back."""
        page = await admin.workflows(cursor, limit)
        return WorkflowPage(
            items=[WorkflowView.from_domain(w) for w in page.items], next_cursor=page.next_cursor
        )

    @get("/{workflow_id:str}", responses=documented(404))
    async def get_workflow(self, admin: AdminDep, workflow_id: Id) -> WorkflowView:
        """One workflow with each step's current run (a running step shows `active`)."""
        return WorkflowView.of(await admin.workflow(workflow_id))

    @post(
        "/{workflow_id:str}/cancel",
        guards=[can_act],
        opt=audited(Action.WORKFLOW_CANCEL, "{workflow_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def cancel(self, admin: AdminDep, actor: ActorDep, workflow_id: Id) -> WorkflowView:
        """Cancel a workflow: steps not started never will (`skipped`), waiting runs are
        cancelled, running ones asked to stop. Cancelling a cancelled workflow changes
        nothing. 404 for an unknown workflow."""
        await admin.cancel_workflow(actor, workflow_id)
        return WorkflowView.of(await admin.workflow(workflow_id))
