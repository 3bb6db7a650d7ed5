"""Registered jobs: summaries, statistics, trigger, pause and resume."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from hub_scheduler.domain.admin import PAGE_DEFAULT, Action, Actor, AdminService
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep, HubDep
from hub_scheduler.entrypoints.api.paging import PAGE_HEADERS, PageCursor, PageLimit, paged
from hub_scheduler.entrypoints.api.params import JobPath, Name
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import (
    JobDetailView,
    JobPausedView,
    JobStatsView,
    JobSummaryView,
    NamedTriggerBody,
    TriggerBody,
    TriggeredView,
)
from hub_scheduler.entrypoints.api.security import can_act, can_read

#: Runs shown with one job.
RECENT_RUNS = 20


async def _trigger(
    admin: AdminService, actor: Actor, name: str, body: TriggerBody
) -> TriggeredView:
    answer = await admin.trigger_enqueued(
        actor,
        name,
        body.payload,
        priority=body.priority,
        delay=body.delay,
        idempotency_key=body.idempotency_key,
    )
    return TriggeredView(run_id=answer.run_id, duplicate=not answer.created)


class JobsController(Controller):
    """``/jobs``: what is registered, how it does, and running or pausing it."""

    path = "/jobs"
    tags = ("jobs",)
    guards = (can_read,)

    @get("/", responses=documented(), response_headers=PAGE_HEADERS)
    async def list_jobs(
        self,
        admin: AdminDep,
        request: Request[Any, Any, Any],
        limit: PageLimit = PAGE_DEFAULT,
        cursor: PageCursor = None,
    ) -> Response[list[JobSummaryView]]:
        """Registered jobs by name, a page at a time (follow `X-Next-Cursor` or the `Link`
        header), each with its schedules, pause flag, last run and last 24 h."""
        page = await admin.job_summaries_page(cursor, limit)
        views = [JobSummaryView.from_domain(s) for s in page.items]
        return paged(request, views, page.next_cursor)

    @get("/{name:str}", responses=documented(404))
    async def get_job(self, admin: AdminDep, hub: HubDep, name: JobPath) -> JobDetailView:
        """One job with its recent runs."""
        [summary] = await admin.job_summaries([name])
        recent = await hub.history.list(job=name, limit=RECENT_RUNS)
        return JobDetailView.from_summary(summary, recent.items)

    @get("/metrics", responses=documented(), response_headers=PAGE_HEADERS)
    async def job_metrics(
        self,
        admin: AdminDep,
        request: Request[Any, Any, Any],
        limit: PageLimit = PAGE_DEFAULT,
        cursor: PageCursor = None,
    ) -> Response[list[JobStatsView]]:
        """Per job (by name, a page at a time as ``/jobs``): outcomes over 1 h, 24 h, 7 d and
        90 d, success rate, duration p50/p95 (power-of-two buckets: at most 2x the true
        value), and the last 24 hourly buckets."""
        page = await admin.job_stats_page(cursor, limit)
        return paged(request, [JobStatsView.from_domain(s) for s in page.items], page.next_cursor)

    @post(
        "/trigger",
        guards=[can_act],
        opt=audited(Action.JOB_TRIGGER),
        status_code=HTTP_202_ACCEPTED,
        responses=documented(404),
    )
    async def trigger_named(
        self,
        admin: AdminDep,
        actor: ActorDep,
        data: JSONBody[NamedTriggerBody],
    ) -> TriggeredView:
        """Enqueue a run of the named job now (or after `delay_seconds`); a repeated
        `idempotency_key` answers the first run's id with ``duplicate: true``."""
        return await _trigger(admin, actor, data.name, data)

    @post(
        "/{name:str}/trigger",
        guards=[can_act],
        opt=audited(Action.JOB_TRIGGER, "{name}"),
        status_code=HTTP_202_ACCEPTED,
        responses=documented(404),
    )
    async def trigger(
        self,
        admin: AdminDep,
        actor: ActorDep,
        name: Name,
        data: JSONBody[TriggerBody | None] = None,
    ) -> TriggeredView:
        """Enqueue a run of this job now (or after `delay_seconds`); a repeated
        `idempotency_key` answers the first run's id with ``duplicate: true``."""
        return await _trigger(admin, actor, name, data or TriggerBody())

    @post(
        "/{name:str}/pause",
        guards=[can_act],
        opt=audited(Action.JOB_PAUSE, "{name}"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def pause(self, admin: AdminDep, actor: ActorDep, name: Name) -> JobPausedView:
        """Pause one job: its runs wait in order; running ones finish."""
        await admin.set_job_paused(actor, name, paused=True)
        return JobPausedView(name=name, paused=True)

    @post(
        "/{name:str}/resume",
        guards=[can_act],
        opt=audited(Action.JOB_RESUME, "{name}"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def resume(self, admin: AdminDep, actor: ActorDep, name: Name) -> JobPausedView:
        """Resume one job."""
        await admin.set_job_paused(actor, name, paused=False)
        return JobPausedView(name=name, paused=False)
