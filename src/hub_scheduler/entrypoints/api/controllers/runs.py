"""Run history: listing, one run, cancelling a run, bulk actions, and cleaning old history."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from hub_scheduler.domain.admin import Action, Actor, AdminService, BulkAction
from hub_scheduler.domain.model import RunState
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep, HubDep
from hub_scheduler.entrypoints.api.params import Cursor, Id, JobFilter, Limit
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import (
    BulkBody,
    BulkView,
    CleanBody,
    RemovedView,
    RunPage,
    RunView,
)
from hub_scheduler.entrypoints.api.security import can_act, can_read

#: The history's ``status`` filter: a run state, or ``failed`` (one query parameter type: the
#: parser takes a single string-like type).
HistoryStatus = Literal[
    "queued", "delayed", "active", "succeeded", "retry_scheduled", "dead", "cancelled", "failed"
]
#: What ``status=failed`` selects: runs whose last attempt failed.
FAILED_STATES = frozenset({RunState.RETRY_SCHEDULED, RunState.DEAD})


class RunsController(Controller):
    """``/jobs/history``, ``/jobs/clean`` and ``/runs/{run_id}``."""

    tags = ("history",)
    guards = (can_read,)

    @get("/jobs/history", responses=documented(404))
    async def history(
        self,
        hub: HubDep,
        limit: Limit = 50,
        cursor: Cursor = None,
        job: JobFilter = None,
        status: Annotated[
            HistoryStatus | None,
            QueryParameter(
                description="Only this state; `failed`: runs whose last attempt failed "
                "(`retry_scheduled` or `dead`)."
            ),
        ] = None,
    ) -> RunPage:
        """Runs newest first, optionally of one job and one state; pass `next_cursor` back."""
        if job is not None:
            hub.registry.get(job)  # an unknown job is a 404, not an empty page
        states = None
        if status == "failed":
            states = FAILED_STATES
        elif status is not None:
            states = frozenset({RunState(status)})
        page = await hub.history.list(job=job, states=states, cursor=cursor, limit=limit)
        return RunPage.from_domain(page)

    @get("/runs/{run_id:str}", responses=documented(404))
    async def get_run(self, hub: HubDep, run_id: Id) -> RunView:
        """One run with its attempts, last error, result (once it succeeded) and latest
        progress report."""
        run = await hub.history.get(run_id)
        stored = await hub.backend.results.result(run_id)
        return RunView.with_outputs(run, stored, await hub.progress(run_id))

    @post(
        "/runs/{run_id:str}/cancel",
        guards=[can_act],
        opt=audited(Action.RUN_CANCEL, "{run_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404, 409),
    )
    async def cancel(self, admin: AdminDep, actor: ActorDep, run_id: Id) -> RunView:
        """Cancel a run that has not finished: a waiting one (queued, delayed or waiting for
        a retry) at once; a running one is asked to stop (the answer is still `active`, with
        `cancel_requested_at`; it ends `cancelled` once its handler stops, within the
        worker's cancel grace, unless it succeeds first). 404 for an unknown run, 409 for a
        finished one."""
        return RunView.from_domain(await admin.cancel(actor, run_id))

    @post(
        "/runs/bulk/cancel",
        guards=[can_act],
        opt=audited(Action.RUNS_CANCEL, "runs"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def bulk_cancel(
        self, admin: AdminDep, actor: ActorDep, data: JSONBody[BulkBody]
    ) -> BulkView:
        """Cancel every selected run that has not finished (a running one is asked to stop),
        up to `limit`; one audit entry with the selection and the counts."""
        return await _bulk(admin, actor, BulkAction.CANCEL, data)

    @post(
        "/runs/bulk/retry",
        guards=[can_act],
        opt=audited(Action.RUNS_RETRY, "runs"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def bulk_retry(
        self, admin: AdminDep, actor: ActorDep, data: JSONBody[BulkBody]
    ) -> BulkView:
        """Retry every selected dead letter (new runs linked to them), up to `limit`."""
        return await _bulk(admin, actor, BulkAction.RETRY, data)

    @post(
        "/runs/bulk/delete",
        guards=[can_act],
        opt=audited(Action.RUNS_DELETE, "runs"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def bulk_delete(
        self, admin: AdminDep, actor: ActorDep, data: JSONBody[BulkBody]
    ) -> BulkView:
        """Delete every selected dead letter, up to `limit`."""
        return await _bulk(admin, actor, BulkAction.DELETE, data)

    @post(
        "/jobs/clean",
        guards=[can_act],
        opt=audited(Action.HISTORY_CLEAN, "history"),
        status_code=HTTP_200_OK,
        responses=documented(),
    )
    async def clean(
        self,
        admin: AdminDep,
        actor: ActorDep,
        data: JSONBody[CleanBody],
    ) -> RemovedView:
        """Delete finished runs older than `older_than_days` (optionally only some states)."""
        removed = await admin.clean_history(
            actor, timedelta(days=data.older_than_days), data.run_states
        )
        return RemovedView(removed=removed)


async def _bulk(admin: AdminService, actor: Actor, action: BulkAction, body: BulkBody) -> BulkView:
    result = await admin.bulk(actor, action, body.selection(), limit=body.limit)
    return BulkView.from_domain(result)
