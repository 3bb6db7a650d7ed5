"""The dead-letter queue: list, retry, delete, purge."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.status_codes import HTTP_200_OK

from hub_scheduler.domain.admin import Action
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep, HubDep
from hub_scheduler.entrypoints.api.params import Cursor, Id, Limit
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import (
    DeletedView,
    RemovedView,
    RunIdsView,
    RunIdView,
    RunPage,
)
from hub_scheduler.entrypoints.api.security import can_act, can_read


class DeadLettersController(Controller):
    """``/jobs/dlq``."""

    path = "/jobs/dlq"
    tags = ("dead letters",)
    guards = (can_read,)

    @get("/", responses=documented())
    async def list_dead(self, hub: HubDep, limit: Limit = 50, cursor: Cursor = None) -> RunPage:
        """Dead runs, newest first."""
        return RunPage.from_domain(await hub.dead_letters.list(cursor=cursor, limit=limit))

    @post(
        "/retry-all",
        guards=[can_act],
        opt=audited(Action.DLQ_RETRY_ALL, "dlq"),
        status_code=HTTP_200_OK,
        responses=documented(),
    )
    async def retry_all(self, admin: AdminDep, actor: ActorDep) -> RunIdsView:
        """Retry every dead letter as a new run."""
        return RunIdsView(run_ids=await admin.retry_all_dead(actor))

    @post(
        "/{run_id:str}/retry",
        guards=[can_act],
        opt=audited(Action.DLQ_RETRY, "{run_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def retry(self, admin: AdminDep, actor: ActorDep, run_id: Id) -> RunIdView:
        """Retry one dead letter as a new run linked to it."""
        return RunIdView(run_id=await admin.retry_dead(actor, run_id))

    @delete(
        "/{run_id:str}",
        guards=[can_act],
        opt=audited(Action.DLQ_DELETE, "{run_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def delete_one(self, admin: AdminDep, actor: ActorDep, run_id: Id) -> DeletedView:
        """Forget one dead letter."""
        await admin.delete_dead(actor, run_id)
        return DeletedView(deleted=run_id)

    @delete(
        "/",
        guards=[can_act],
        opt=audited(Action.DLQ_PURGE, "dlq"),
        status_code=HTTP_200_OK,
        responses=documented(),
    )
    async def purge(self, admin: AdminDep, actor: ActorDep) -> RemovedView:
        """Forget every dead letter."""
        return RemovedView(removed=await admin.purge_dead(actor))
