"""The admin routes, built for one `Hub`: `admin_router(hub)` is what a host app mounts."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

import attrs
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.plugins.prometheus import PrometheusConfig
from litestar.status_codes import HTTP_202_ACCEPTED
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest

from hub_scheduler.domain.errors import HubSchedulerError, JobNotFoundError
from hub_scheduler.domain.model import Priority, RunState
from hub_scheduler.domain.ports import AuditEntry, AuditLog
from hub_scheduler.entrypoints.api import problems
from hub_scheduler.entrypoints.api.limits import rate_limits
from hub_scheduler.entrypoints.api.schemas import (
    CleanBody,
    NamedTriggerBody,
    ScheduleBody,
    SchedulePatch,
    TriggerBody,
    patched_schedule,
    run_json,
    schedule_from_body,
    schedule_json,
    slot_json,
    snapshot_json,
    stats_json,
)
from hub_scheduler.entrypoints.api.security import can_act, can_read
from hub_scheduler.hub import Hub

audit_logger = logging.getLogger("hub_scheduler.audit")

#: Prometheus text format (Litestar adds the charset itself).
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
READ = {"hub_read": True}
ACT = {"hub_mutation": True}
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Cursor = Annotated[str | None, QueryParameter(max_length=100, pattern=r"^-?[0-9]+:[0-9]+$")]
Name = Annotated[str, PathParameter(max_length=100)]
Id = Annotated[str, PathParameter(max_length=100)]


@attrs.define
class Auditor:
    """Writes audit entries for one hub (and logs them on ``hub_scheduler.audit``)."""

    audit: AuditLog
    hub: Hub

    async def __call__(
        self,
        request: Request[Any, Any, Any],
        action: str,
        target: str,
        *,
        outcome: str = "ok",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        """Record one action (or refused attempt) by the request's principal."""
        user = request.scope.get("user")
        entry = AuditEntry(
            id=secrets.token_hex(8),
            at=self.hub.clock.now(),
            actor=getattr(user, "subject", None) or "anonymous",
            roles=tuple(getattr(user, "roles", ())),
            action=action,
            target=target,
            outcome=outcome,
            request_id=request.headers.get("x-request-id"),
            client=request.client.host if request.client else None,
            before=before,
            after=after,
            detail=detail,
        )
        audit_logger.info("%s %s on %s by %s", action, outcome, target, entry.actor)
        try:
            await self.audit.record(entry)
        except HubSchedulerError:
            audit_logger.exception("audit entry could not be stored: %s", entry)


_pending_audits: set[asyncio.Task[None]] = set()


async def drain_audits() -> None:
    """Wait for audit entries of refused requests still being written (tests, shutdown)."""
    if _pending_audits:
        await asyncio.gather(*_pending_audits, return_exceptions=True)


def admin_router(  # noqa: PLR0915 - one closure per route keeps each handler next to its hub
    hub: Hub,
    audit: AuditLog,
    *,
    path: str = "/api/v1",
    auth_middleware: Sequence[Any] = (),
    rate_limit_reads: int = 300,
    rate_limit_mutations: int = 60,
    rate_limit_store: str = "hub_scheduler_rate_limit",
) -> Router:
    """The admin API for `hub` under `path`.

    Args:
        hub: the hub whose jobs, queue and schedules the routes operate on.
        audit: where mutations and refused attempts are recorded.
        auth_middleware: authentication middleware putting a user with ``subject`` and
            ``roles`` in ``request.user`` (the JWT middleware by default; a host app may pass
            its own).
        rate_limit_reads: read requests per principal per minute.
        rate_limit_mutations: mutations per principal per minute.
        rate_limit_store: name of the Litestar store the limits are counted in (register a
            Redis-backed store under this name to share limits across processes).
    """

    record = Auditor(audit, hub)

    def job_name(name: str) -> str:
        if name not in hub.registry:
            raise JobNotFoundError(name)
        return name

    def on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        # Exception handlers are synchronous: the refused attempt is written in the background.
        if exc.status_code in (401, 403, 429) and request.method not in ("GET", "HEAD"):
            action = f"{request.method} {request.url.path}"
            task = asyncio.create_task(
                record(request, action, request.url.path, outcome="refused", detail=exc.detail)
            )
            _pending_audits.add(task)
            task.add_done_callback(_pending_audits.discard)
        return problems.http_problem(request, exc)

    # --- health ---------------------------------------------------------------------------

    @get("/health", opt={"public": True, **READ}, tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @get("/ready", opt={"public": True, **READ}, tags=["health"])
    async def ready() -> Response[Any]:
        """Readiness: the store answers (503 problem when it does not)."""
        try:
            await hub.ping()
        except HubSchedulerError:
            return problems.problem(503, "the store is not reachable")
        return Response({"status": "ready"})

    # --- jobs ----------------------------------------------------------------------------

    async def job_summaries(names: Sequence[str]) -> list[dict[str, Any]]:
        # The queue snapshot and the schedules are read once for all jobs, not per job.
        paused = (await hub.queue.snapshot()).paused_jobs
        schedules = await hub.schedules.list()
        now = hub.clock.now()
        summaries = []
        for name in names:
            definition = hub.registry.get(name).definition
            recent = (await hub.history.list(job=name, limit=1)).items
            day = (await hub.stats.job(name, now, windows=("24h",))).windows["24h"]
            summaries.append(
                {
                    "name": name,
                    "description": definition.description,
                    "priority": definition.priority.name.lower(),
                    "timeout_seconds": definition.timeout.total_seconds(),
                    "max_retries": definition.retry.max_retries,
                    "paused": name in paused,
                    "schedules": [schedule_json(s) for s in schedules if s.schedule.job == name],
                    "last_run": run_json(recent[0]) if recent else None,
                    "last_24h": {
                        "succeeded": day.succeeded,
                        "failed": day.failed,
                        "dead": day.dead,
                    },
                }
            )
        return summaries

    @get("/jobs", guards=[can_read], opt=READ, tags=["jobs"])
    async def list_jobs() -> list[dict[str, Any]]:
        """Every registered job with its schedules, pause flag and last run."""
        return await job_summaries([job.definition.name for job in hub.registry])

    @get("/jobs/{name:str}", guards=[can_read], opt=READ, tags=["jobs"])
    async def get_job(name: Name) -> dict[str, Any]:
        """One job with its recent runs."""
        [summary] = await job_summaries([job_name(name)])
        summary["recent_runs"] = [
            run_json(r) for r in (await hub.history.list(job=name, limit=20)).items
        ]
        return summary

    async def trigger(
        request: Request[Any, Any, Any], name: Name, body: TriggerBody
    ) -> dict[str, Any]:
        delay = timedelta(seconds=body.delay_seconds) if body.delay_seconds else None
        run_id = await hub.enqueue(
            job_name(name),
            body.payload or {},
            priority=Priority.parse(body.priority) if body.priority is not None else None,
            delay=delay,
            idempotency_key=body.idempotency_key,
        )
        await record(request, "job.trigger", name, after={"run_id": run_id})
        return {"run_id": run_id}

    @post("/jobs/trigger", guards=[can_act], opt=ACT, status_code=HTTP_202_ACCEPTED, tags=["jobs"])
    async def trigger_named(
        request: Request[Any, Any, Any], data: JSONBody[NamedTriggerBody]
    ) -> dict[str, Any]:
        """Enqueue a run of the named job now (or after `delay_seconds`)."""
        return await trigger(request, data.name, data)

    @post("/jobs/{name:str}/trigger", guards=[can_act], opt=ACT, status_code=HTTP_202_ACCEPTED,
          tags=["jobs"])  # fmt: skip
    async def trigger_path(
        request: Request[Any, Any, Any], name: Name, data: JSONBody[TriggerBody | None] = None
    ) -> dict[str, Any]:
        """Enqueue a run of this job now (or after `delay_seconds`)."""
        return await trigger(request, name, data or TriggerBody())

    @post("/jobs/{name:str}/pause", guards=[can_act], opt=ACT, tags=["jobs"], status_code=200)
    async def pause_job(request: Request[Any, Any, Any], name: Name) -> dict[str, Any]:
        """Pause one job: its runs wait in order; running ones finish."""
        await hub.queue.pause(job_name(name))
        await record(request, "job.pause", name, after={"paused": True})
        return {"name": name, "paused": True}

    @post("/jobs/{name:str}/resume", guards=[can_act], opt=ACT, tags=["jobs"], status_code=200)
    async def resume_job(request: Request[Any, Any, Any], name: Name) -> dict[str, Any]:
        """Resume one job."""
        await hub.queue.resume(job_name(name))
        await record(request, "job.resume", name, after={"paused": False})
        return {"name": name, "paused": False}

    # --- queue ----------------------------------------------------------------------------

    @get("/queue", guards=[can_read], opt=READ, tags=["queue"])
    async def queue_health() -> Response[Any]:
        """Depth per priority, delayed, active, dead letters, workers, schedulers, and an
        overall status: ok, degraded (paused, or no worker or scheduler alive) or down."""
        try:
            snapshot = await hub.queue.snapshot()
            workers = await hub.presence.workers(hub.clock.now())
            schedulers = await hub.presence.schedulers(hub.clock.now())
            has_schedules = bool(await hub.schedules.next_due_at())
        except HubSchedulerError:
            return problems.problem(503, "the store is unavailable", status_of_queue="down")
        body = snapshot_json(snapshot, workers)
        body["schedulers"] = [
            {"id": s.id, "seen_at": s.seen_at.isoformat(),
             "lateness_p99_seconds": s.lateness_p99.total_seconds() if s.lateness_p99 else None}
            for s in schedulers
        ]  # fmt: skip
        degraded = snapshot.paused or not workers or (has_schedules and not schedulers)
        body["status"] = "degraded" if degraded else "ok"
        return Response(body)

    @post("/queue/pause", guards=[can_act], opt=ACT, tags=["queue"], status_code=200)
    async def pause_queue(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Pause the whole queue: nothing new starts; running jobs finish."""
        await hub.queue.pause()
        await record(request, "queue.pause", "queue", after={"paused": True})
        return {"paused": True}

    @post("/queue/resume", guards=[can_act], opt=ACT, tags=["queue"], status_code=200)
    async def resume_queue(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Resume the queue."""
        await hub.queue.resume()
        await record(request, "queue.resume", "queue", after={"paused": False})
        return {"paused": False}

    # --- history --------------------------------------------------------------------------

    @get("/jobs/history", guards=[can_read], opt=READ, tags=["history"])
    async def history(
        limit: Limit = 50,
        cursor: Cursor = None,
        job: Annotated[str | None, QueryParameter(max_length=100)] = None,
        status: Annotated[RunState | None, QueryParameter()] = None,
    ) -> dict[str, Any]:
        """Runs newest first, optionally of one job and one state; pass `next_cursor` back."""
        if job is not None:
            job_name(job)
        page = await hub.history.list(
            job=job, states=frozenset({status}) if status else None, cursor=cursor, limit=limit
        )
        return {"items": [run_json(r) for r in page.items], "next_cursor": page.next_cursor}

    @get("/jobs/metrics", guards=[can_read], opt=READ, tags=["jobs"])
    async def job_metrics() -> list[dict[str, Any]]:
        """Per job: outcomes over 1 h, 24 h, 7 d and 90 d, success rate, duration p50/p95
        (power-of-two buckets: at most 2x the true value), and the last 24 hourly buckets."""
        now = hub.clock.now()
        return [stats_json(await hub.stats.job(job.definition.name, now)) for job in hub.registry]

    @get("/runs/{run_id:str}", guards=[can_read], opt=READ, tags=["history"])
    async def get_run(run_id: Id) -> dict[str, Any]:
        """One run with its attempts and last error."""
        return run_json(await hub.history.get(run_id))

    @post("/jobs/clean", guards=[can_act], opt=ACT, tags=["history"], status_code=200)
    async def clean(request: Request[Any, Any, Any], data: JSONBody[CleanBody]) -> dict[str, Any]:
        """Delete finished runs older than `older_than_days` (optionally only some states)."""
        cut = hub.clock.now() - timedelta(days=data.older_than_days)
        states = frozenset(RunState(s) for s in data.states) if data.states else None
        removed = await hub.history.clean(cut, states)
        after = {"removed": removed, "older_than_days": data.older_than_days}
        await record(request, "history.clean", "history", after=after)
        return {"removed": removed}

    # --- dead letters ------------------------------------------------------------------------

    @get("/jobs/dlq", guards=[can_read], opt=READ, tags=["dead letters"])
    async def dead_letters(limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
        """Dead runs, newest first."""
        page = await hub.dead_letters.list(cursor=cursor, limit=limit)
        return {"items": [run_json(r) for r in page.items], "next_cursor": page.next_cursor}

    @post("/jobs/dlq/retry-all", guards=[can_act], opt=ACT, tags=["dead letters"], status_code=200)
    async def retry_all(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Retry every dead letter as a new run."""
        run_ids = await hub.dead_letters.retry_all()
        await record(request, "dlq.retry_all", "dlq", after={"count": len(run_ids)})
        return {"run_ids": run_ids}

    @post(
        "/jobs/dlq/{run_id:str}/retry",
        guards=[can_act],
        opt=ACT,
        tags=["dead letters"],
        status_code=200,
    )
    async def retry_dead(request: Request[Any, Any, Any], run_id: Id) -> dict[str, Any]:
        """Retry one dead letter as a new run linked to it."""
        new_id = await hub.dead_letters.retry(run_id)
        await record(request, "dlq.retry", run_id, after={"run_id": new_id})
        return {"run_id": new_id}

    @delete("/jobs/dlq/{run_id:str}", guards=[can_act], opt=ACT, tags=["dead letters"],
            status_code=200)  # fmt: skip
    async def delete_dead(request: Request[Any, Any, Any], run_id: Id) -> dict[str, Any]:
        """Forget one dead letter."""
        await hub.dead_letters.delete(run_id)
        await record(request, "dlq.delete", run_id)
        return {"deleted": run_id}

    @delete("/jobs/dlq", guards=[can_act], opt=ACT, tags=["dead letters"], status_code=200)
    async def purge_dead(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Forget every dead letter."""
        removed = await hub.dead_letters.purge()
        await record(request, "dlq.purge", "dlq", after={"removed": removed})
        return {"removed": removed}

    # --- schedules ---------------------------------------------------------------------------

    @get("/schedules", guards=[can_read], opt=READ, tags=["schedules"])
    async def list_schedules() -> list[dict[str, Any]]:
        """Every schedule with its next and last fire."""
        return [schedule_json(s) for s in await hub.schedules.list()]

    @post("/schedules", guards=[can_act], opt=ACT, tags=["schedules"], status_code=201)
    async def create_schedule(
        request: Request[Any, Any, Any], data: JSONBody[ScheduleBody]
    ) -> dict[str, Any]:
        """Create a schedule at runtime (for example a custom cron from the dashboard)."""
        job_name(data.job)
        state = await hub.schedules.create(schedule_from_body(data), hub.clock.now())
        body = schedule_json(state)
        await record(request, "schedule.create", data.id, after=body)
        return body

    @patch("/schedules/{schedule_id:str}", guards=[can_act], opt=ACT, tags=["schedules"])
    async def edit_schedule(
        request: Request[Any, Any, Any], schedule_id: Id, data: JSONBody[SchedulePatch]
    ) -> dict[str, Any]:
        """Change some fields of a schedule; its runtime state is kept."""
        current = await hub.schedules.get(schedule_id)
        before = schedule_json(current)
        new = patched_schedule(current.schedule, data)
        state = await hub.schedules.update(new, hub.clock.now())
        after = schedule_json(state)
        await record(request, "schedule.edit", schedule_id, before=before, after=after)
        return after

    @delete("/schedules/{schedule_id:str}", guards=[can_act], opt=ACT, tags=["schedules"],
            status_code=200)  # fmt: skip
    async def delete_schedule(request: Request[Any, Any, Any], schedule_id: Id) -> dict[str, Any]:
        """Delete a schedule (its ledger stays for the retention)."""
        before = schedule_json(await hub.schedules.get(schedule_id))
        await hub.schedules.delete(schedule_id)
        await record(request, "schedule.delete", schedule_id, before=before)
        return {"deleted": schedule_id}

    @post(
        "/schedules/{schedule_id:str}/pause",
        guards=[can_act],
        opt=ACT,
        tags=["schedules"],
        status_code=200,
    )
    async def pause_schedule(request: Request[Any, Any, Any], schedule_id: Id) -> dict[str, Any]:
        """Pause a schedule: its slots are ledgered as paused."""
        state = await hub.schedules.set_paused(schedule_id, paused=True)
        await record(request, "schedule.pause", schedule_id, after={"paused": True})
        return schedule_json(state)

    @post(
        "/schedules/{schedule_id:str}/resume",
        guards=[can_act],
        opt=ACT,
        tags=["schedules"],
        status_code=200,
    )
    async def resume_schedule(request: Request[Any, Any, Any], schedule_id: Id) -> dict[str, Any]:
        """Resume a schedule from its next slot."""
        state = await hub.schedules.set_paused(schedule_id, paused=False)
        await record(request, "schedule.resume", schedule_id, after={"paused": False})
        return schedule_json(state)

    @get("/schedules/{schedule_id:str}/preview", guards=[can_read], opt=READ, tags=["schedules"])
    async def preview_schedule(
        schedule_id: Id, n: Annotated[int, QueryParameter(ge=1, le=100)] = 10
    ) -> list[dict[str, Any]]:
        """The next `n` fire times, with local time and DST notes."""
        state = await hub.schedules.get(schedule_id)
        fires = state.schedule.preview(hub.clock.now(), n, state.runs)
        return [
            {
                "utc": f.utc.isoformat().replace("+00:00", "Z"),
                "local": f.local.isoformat(),
                "note": f.note,
            }
            for f in fires
        ]

    @get("/schedules/{schedule_id:str}/slots", guards=[can_read], opt=READ, tags=["schedules"])
    async def schedule_slots(
        schedule_id: Id, limit: Limit = 50, cursor: Cursor = None
    ) -> dict[str, Any]:
        """The slot ledger: what became of each slot, newest first."""
        await hub.schedules.get(schedule_id)
        page = await hub.schedules.slots(schedule_id, cursor, limit)
        return {"items": [slot_json(r) for r in page.items], "next_cursor": page.next_cursor}

    # --- audit and metrics -------------------------------------------------------------------

    @get("/audit", guards=[can_read], opt=READ, tags=["audit"])
    async def audit_trail(limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
        """Admin actions and refused attempts, newest first."""
        page = await audit.list(cursor, limit)
        items = [
            {"id": e.id, "at": e.at.isoformat().replace("+00:00", "Z"), "actor": e.actor,
             "roles": list(e.roles), "action": e.action, "target": e.target, "outcome": e.outcome,
             "request_id": e.request_id, "client": e.client, "before": e.before, "after": e.after,
             "detail": e.detail}
            for e in page.items
        ]  # fmt: skip
        return {"items": items, "next_cursor": page.next_cursor}

    registry = CollectorRegistry()
    depth = Gauge(
        "hub_scheduler_queue_depth", "Runs waiting, by priority", ["priority"], registry=registry
    )
    gauges = {
        name: Gauge(f"hub_scheduler_{name}", text, registry=registry)
        for name, text in (
            ("queue_delayed", "Runs waiting for their time"),
            ("queue_active", "Runs being worked on"),
            ("dead_letters", "Runs in the dead-letter queue"),
            ("queue_paused", "1 while the whole queue is paused"),
            ("workers_live", "Workers seen recently"),
        )
    }
    job_runs = Gauge(
        "hub_scheduler_job_runs_total",
        "Finished attempts per job and outcome, since the store began counting",
        ["job", "outcome"],
        registry=registry,
    )
    last_success = Gauge(
        "hub_scheduler_job_last_success_timestamp_seconds",
        "When a job last succeeded (Unix time)",
        ["job"],
        registry=registry,
    )
    duration = Gauge(
        "hub_scheduler_job_duration_seconds",
        "Attempt duration percentiles over the last 24 h (bucket upper bounds)",
        ["job", "quantile"],
        registry=registry,
    )
    lateness = Gauge(
        "hub_scheduler_scheduler_fire_lateness_seconds",
        "Fire lateness of on-time slots, worst over live schedulers",
        ["quantile"],
        registry=registry,
    )
    schedulers_live = Gauge(
        "hub_scheduler_schedulers_live", "Schedulers seen recently", registry=registry
    )
    job_paused = Gauge(
        "hub_scheduler_job_paused", "1 while a job is paused", ["job"], registry=registry
    )

    @get("/metrics", guards=[can_read], opt=READ, tags=["metrics"], media_type=PROMETHEUS_TEXT)
    async def metrics() -> Response[bytes]:
        """Prometheus text: queue depth, delayed, active, dead letters, pause flags, workers."""
        snapshot = await hub.queue.snapshot()
        for priority, count in snapshot.depth.items():
            depth.labels(priority.name.lower()).set(count)
        gauges["queue_delayed"].set(snapshot.delayed)
        gauges["queue_active"].set(snapshot.active)
        gauges["dead_letters"].set(snapshot.dead)
        gauges["queue_paused"].set(1 if snapshot.paused else 0)
        now = hub.clock.now()
        gauges["workers_live"].set(len(await hub.presence.workers(now)))
        live = await hub.presence.schedulers(now)
        schedulers_live.set(len(live))
        for quantile, values in (
            ("0.5", [s.lateness_p50 for s in live if s.lateness_p50 is not None]),
            ("0.99", [s.lateness_p99 for s in live if s.lateness_p99 is not None]),
        ):
            if values:
                lateness.labels(quantile).set(max(values).total_seconds())
        for job in hub.registry:
            name = job.definition.name
            stats = await hub.stats.job(name, now, windows=("24h",))
            for outcome in ("succeeded", "failed", "dead"):
                job_runs.labels(name, outcome).set(getattr(stats.totals, outcome))
            if stats.last_success is not None:
                last_success.labels(name).set(stats.last_success.timestamp())
            day = stats.windows["24h"]
            for quantile, value in (("0.5", day.p50), ("0.95", day.p95)):
                if value is not None:
                    duration.labels(name, quantile).set(value.total_seconds())
            job_paused.labels(job.definition.name).set(
                1 if job.definition.name in snapshot.paused_jobs else 0
            )
        # Our gauges, then the HTTP metrics Litestar's middleware keeps in the default registry.
        body = generate_latest(registry) + generate_latest(REGISTRY)
        return Response(body, media_type=PROMETHEUS_TEXT)

    return Router(
        path=path,
        route_handlers=[
            health,
            ready,
            list_jobs,
            get_job,
            trigger_named,
            trigger_path,
            pause_job,
            resume_job,
            queue_health,
            pause_queue,
            resume_queue,
            history,
            job_metrics,
            get_run,
            clean,
            dead_letters,
            retry_all,
            retry_dead,
            delete_dead,
            purge_dead,
            list_schedules,
            create_schedule,
            edit_schedule,
            delete_schedule,
            pause_schedule,
            resume_schedule,
            preview_schedule,
            schedule_slots,
            audit_trail,
            metrics,
        ],
        middleware=[
            PrometheusConfig(
                app_name="hub_scheduler", prefix="hub_scheduler_http", group_path=True
            ).middleware,
            *auth_middleware,
            *rate_limits(rate_limit_reads, rate_limit_mutations, rate_limit_store),
        ],
        exception_handlers={
            HTTPException: on_http_error,
            HubSchedulerError: problems.domain_problem,
            Exception: problems.internal_problem,
        },
    )
