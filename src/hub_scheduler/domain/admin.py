"""The admin use cases, written once: the API, the dashboard and the CLI are thin callers.

Every action takes the `Actor` who asks for it and writes one audit entry, with one action
vocabulary (`Action`) whatever the surface: ``ok`` when it was done, ``failed`` (with the
reason) when the domain refused it. Refusals before the use case runs (no token, wrong role,
rate limited) are recorded by the caller through `AdminService.refused`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs

from hub_scheduler.domain.alerts import AlertBook, change_book, mute_target, read_book
from hub_scheduler.domain.errors import (
    DeclaredScheduleError,
    HubSchedulerError,
    IllegalTransitionError,
    InvalidCursorError,
    InvalidJobError,
    InvalidPageLimitError,
    NotFoundError,
    RunNotFoundError,
    ScheduleExistsError,
    ValidationError,
)
from hub_scheduler.domain.model import (
    FINAL_STATES,
    Payload,
    Priority,
    Run,
    RunState,
    RunTrigger,
    encode_payload,
    iso_z,
)
from hub_scheduler.domain.ports import (
    AuditEntry,
    Backend,
    BackendVitals,
    Clock,
    Enqueued,
    HasVitals,
    JobQueue,
    JobStats,
    Page,
    QueueSnapshot,
    SchedulerInfo,
    ScheduleState,
    WindowStats,
    WorkerInfo,
    Workflows,
)
from hub_scheduler.domain.registry import Job, RegisteredJob, Registry
from hub_scheduler.domain.schedule import Schedule
from hub_scheduler.domain.workflow import DONE, StepState, Workflow, WorkflowStep

T = TypeVar("T")
audit_logger = logging.getLogger("hub_scheduler.audit")


class Action(enum.StrEnum):
    """What an admin did, as the audit trail names it (the same on every surface)."""

    JOB_TRIGGER = "job.trigger"
    JOB_PAUSE = "job.pause"
    JOB_RESUME = "job.resume"
    QUEUE_PAUSE = "queue.pause"
    QUEUE_RESUME = "queue.resume"
    RUN_CANCEL = "run.cancel"
    DLQ_RETRY = "dlq.retry"
    DLQ_RETRY_ALL = "dlq.retry_all"
    DLQ_DELETE = "dlq.delete"
    DLQ_PURGE = "dlq.purge"
    HISTORY_CLEAN = "history.clean"
    SCHEDULE_CREATE = "schedule.create"
    SCHEDULE_UPDATE = "schedule.update"
    SCHEDULE_PAUSE = "schedule.pause"
    SCHEDULE_RESUME = "schedule.resume"
    SCHEDULE_DELETE = "schedule.delete"
    ALERT_MUTE = "alert.mute"
    RUNS_CANCEL = "runs.cancel"
    RUNS_RETRY = "runs.retry"
    RUNS_DELETE = "runs.delete"
    WORKFLOW_CANCEL = "workflow.cancel"


class BulkAction(enum.StrEnum):
    """What `AdminService.bulk` does to each run a selection matches."""

    CANCEL = "cancel"
    """Cancel it: a waiting one at once, a running one by a cancel request."""
    RETRY = "retry"
    """Retry it from the dead letters (a new run linked to it)."""
    DELETE = "delete"
    """Delete it from the dead letters."""


#: The states each bulk action applies to; runs of other states are left alone (not counted).
BULK_STATES: Mapping[BulkAction, frozenset[RunState]] = {
    BulkAction.CANCEL: frozenset(
        {RunState.QUEUED, RunState.DELAYED, RunState.RETRY_SCHEDULED, RunState.ACTIVE}
    ),
    BulkAction.RETRY: frozenset({RunState.DEAD}),
    BulkAction.DELETE: frozenset({RunState.DEAD}),
}
#: The most runs one bulk action touches (ask again for more: `BulkResult.more`).
BULK_LIMIT = 10_000


@attrs.frozen
class RunSelection:
    """Which runs a bulk action is for: explicit ids, or everything matching a filter (a
    job, states, a trigger, an enqueue-time range). Both given: the ids that match."""

    run_ids: tuple[str, ...] | None = None
    job: str | None = None
    states: frozenset[RunState] | None = None
    trigger: RunTrigger | None = None
    enqueued_after: datetime | None = None
    enqueued_before: datetime | None = None

    def matches(self, run: Run) -> bool:
        """Whether `run` is selected (its id aside)."""
        return (
            (self.job is None or run.job == self.job)
            and (self.states is None or run.state in self.states)
            and (self.trigger is None or run.trigger is self.trigger)
            and (self.enqueued_after is None or run.enqueued_at >= self.enqueued_after)
            and (self.enqueued_before is None or run.enqueued_at < self.enqueued_before)
        )

    def describe(self) -> dict[str, Any]:
        """The selection as the audit trail records it."""
        facts: dict[str, Any] = {}
        if self.run_ids is not None:
            facts["run_ids"] = len(self.run_ids)
        if self.job is not None:
            facts["job"] = self.job
        if self.states is not None:
            facts["states"] = sorted(s.value for s in self.states)
        if self.trigger is not None:
            facts["trigger"] = self.trigger.value
        if self.enqueued_after is not None:
            facts["enqueued_after"] = iso_z(self.enqueued_after)
        if self.enqueued_before is not None:
            facts["enqueued_before"] = iso_z(self.enqueued_before)
        return facts


@attrs.frozen
class BulkResult:
    """What a bulk action did: how many runs it acted on, how many it could not (a run
    that moved on meanwhile), whether more matched than `BULK_LIMIT`, and the new run ids of
    a retry."""

    action: BulkAction
    done: int
    skipped: int
    more: bool
    new_run_ids: tuple[str, ...] = ()


class Outcome(enum.StrEnum):
    """How an audited attempt ended."""

    OK = "ok"
    FAILED = "failed"
    """The use case ran and the domain refused it (unknown job, wrong state, ...)."""
    REFUSED = "refused"
    """Stopped before the use case: not signed in, wrong role, rate limited, bad CSRF."""


@attrs.frozen
class Actor:
    """Who asks for an action, and through what.

    Attributes:
        subject: the person or system (a token's subject, an OS user).
        roles: what they may do (recorded as evidence; the surfaces check them).
        channel: the surface: ``api``, ``dashboard``, ``cli`` or the application's own.
        client: where the request came from (an IP address), when known.
        request_id: the caller's correlation id, when given.
    """

    subject: str
    roles: tuple[str, ...] = ()
    channel: str = "api"
    client: str | None = None
    request_id: str | None = None


class QueueStatus(enum.StrEnum):
    """The queue's health at a glance."""

    OK = "ok"
    DEGRADED = "degraded"
    """Paused, or no live worker, or schedules but no live scheduler, or a schedule overdue
    beyond its grace, or a schedule declared in code missing from the store, or an alert of
    warning or critical severity firing."""


@attrs.frozen
class QueueHealth:
    """The queue's snapshot with the processes serving it.

    Attributes:
        overdue_schedules: ids of schedules whose slot passed more than their misfire grace
            ago unfired (the dead-man check: no scheduler is firing them).
        missing_schedules: ids declared in code on this registry's jobs that the store does
            not hold (never synced by a scheduler, or the store lost its data).
        alerts: the keys of the alerts firing now (``rule:subject``).
        vitals: the store's own health (None: the backend reports none); one with
            `problems` (an evicting Redis) makes the status degraded.
    """

    snapshot: QueueSnapshot
    workers: tuple[WorkerInfo, ...]
    schedulers: tuple[SchedulerInfo, ...]
    status: QueueStatus
    overdue_schedules: tuple[str, ...] = ()
    missing_schedules: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    vitals: BackendVitals | None = None


@attrs.frozen
class JobSummary:
    """A registered job as admins see it: definition, pause flag, schedules, last run, 24 h."""

    job: RegisteredJob
    paused: bool
    schedules: tuple[ScheduleState, ...]
    last_run: Run | None
    last_24h: WindowStats


@attrs.frozen
class WorkflowView:
    """A workflow with the latest state of each step's run (the document records a run's
    state when it ends; this reads the runs themselves, so a running step shows active).

    Attributes:
        runs: step name -> its current run, for steps that have one still in history.
    """

    workflow: Workflow
    runs: Mapping[str, Run]

    def state_of(self, step: WorkflowStep) -> StepState:
        """The step's state, from its run where the run is known and moved on since."""
        run = self.runs.get(step.name)
        if run is None or step.state in DONE or step.state is StepState.BLOCKED:
            return step.state
        return StepState.ACTIVE if run.state is RunState.ACTIVE else step.state


async def cancel_workflow(
    workflows: Workflows, queue: JobQueue, clock: Clock, workflow_id: str
) -> tuple[Workflow, int]:
    """Cancel a workflow: steps not started never will (SKIPPED), unfinished runs are
    cancelled as `JobQueue.cancel` does (their ends come back as events). Returns the
    document and how many runs were cancelled or asked to stop. Raises
    `WorkflowNotFoundError`."""
    while True:
        workflow, version = await workflows.get(workflow_id)
        cancelled = workflow.cancel(clock.now())
        if cancelled == workflow or await workflows.save(cancelled, version):
            break
    stopped = 0
    for member in cancelled.members():
        if member.run_id is None or member.state in DONE:
            continue
        with contextlib.suppress(RunNotFoundError, IllegalTransitionError):  # ended meanwhile
            await queue.cancel(member.run_id)
            stopped += 1
    return cancelled, stopped


#: Items per page of the paged admin listings (jobs, their statistics, schedules): by
#: default, and at most.
PAGE_DEFAULT = 100
PAGE_MAX = 500
#: What starts the cursor of a paged admin listing (`encode_page_cursor`).
PAGE_CURSOR_MARK = "k1."

#: How many items a filtered read (`AdminService.audit_trail`, `find_runs`) reads at most
#: per call before it answers with what it found and a cursor to read on.
FILTER_SCAN = 2000


@attrs.frozen
class FilteredPage(Page[T]):
    """A page of a listing filtered in the service: `scanned` counts the items read for it
    (more than `items` when the filter skipped some); `next_cursor` reads on."""

    scanned: int = 0


@attrs.define
class AdminService:
    """The admin use cases over one backend's ports, for the jobs of one registry."""

    backend: Backend
    registry: Registry
    clock: Clock

    # --- reads ---------------------------------------------------------------------------

    async def queue_health(self) -> QueueHealth:
        """Snapshot, live workers and schedulers, overdue and missing schedules, and the
        status they add up to."""
        now = self.clock.now()
        snapshot = await self.backend.queue.snapshot()
        # A worker's active count comes from the leases, not its last heartbeat (up to one
        # heartbeat period old).
        workers = tuple(
            attrs.evolve(w, active=snapshot.active_by_worker.get(w.id, 0))
            for w in await self.backend.presence.workers(now)
        )
        schedulers = tuple(await self.backend.presence.schedulers(now))
        states = await self.backend.schedules.list()
        has_schedules = any(s.next_fire is not None for s in states)
        overdue = tuple(
            s.schedule.id for s in states
            if s.next_fire is not None and now - s.next_fire > s.schedule.misfire.grace
        )  # fmt: skip
        missing = tuple(sorted(self._declared_ids() - {s.schedule.id for s in states}))
        firing = [a for a in (await self.alerts()).active.values() if a.status.value == "firing"]
        vitals = await self.vitals()
        degraded = (
            snapshot.paused or not workers or (has_schedules and not schedulers)
            or bool(overdue) or bool(missing) or any(a.severity.rank > 0 for a in firing)
            or (vitals is not None and bool(vitals.problems))
        )  # fmt: skip
        status = QueueStatus.DEGRADED if degraded else QueueStatus.OK
        alerts = tuple(sorted(a.key for a in firing))
        return QueueHealth(snapshot, workers, schedulers, status, overdue, missing, alerts, vitals)

    async def vitals(self) -> BackendVitals | None:
        """The store's own health (`HasVitals`); None when the backend reports none. Raises
        `BackendUnavailableError`."""
        if not isinstance(self.backend, HasVitals):
            return None
        return await self.backend.vitals()

    async def alerts(self) -> AlertBook:
        """The alert book: alerts active and recent, and mutes (empty on a store without a
        shared store, where alerts are not kept)."""
        _, book = await read_book(self.backend.shared, self.clock.now())
        return book

    async def job_summaries(self, names: Sequence[str] | None = None) -> list[JobSummary]:
        """Every registered job (or the named ones, in order). Four batch reads for all the
        jobs together (pause flags, schedules, last runs, 24 h), concurrently, whatever
        their number. Raises `JobNotFoundError`."""
        jobs = [self.registry.get(n) for n in names] if names is not None else list(self.registry)
        return await self._summaries(jobs)

    async def _summaries(self, jobs: Sequence[RegisteredJob]) -> list[JobSummary]:
        names = [job.definition.name for job in jobs]
        if not names:
            return []
        paused, schedules, latest, stats = await asyncio.gather(
            self.backend.queue.paused_among(names),
            self.backend.schedules.of_jobs(names),
            self.backend.history.latest(names),
            self.backend.stats.jobs(names, self.clock.now(), windows=("24h",)),
        )
        return [
            JobSummary(
                job=job,
                paused=name in paused,
                schedules=tuple(schedules.get(name, ())),
                last_run=latest.get(name),
                last_24h=day.windows["24h"],
            )
            for job, name, day in zip(jobs, names, stats, strict=True)
        ]

    def _jobs_page(self, cursor: str | None, limit: int) -> tuple[list[RegisteredJob], str | None]:
        """One page of the registered jobs by name, and the cursor after it."""
        names, more = self.registry.names_after(decode_page_cursor(cursor), _page_limit(limit))
        cursor_out = encode_page_cursor(names[-1]) if more and names else None
        return [self.registry.get(n) for n in names], cursor_out

    async def job_summaries_page(
        self, cursor: str | None = None, limit: int = PAGE_DEFAULT
    ) -> Page[JobSummary]:
        """Up to `limit` registered jobs by name, after `cursor` (a `next_cursor` of an
        earlier page), as `job_summaries` reads them: a constant number of round trips
        per page. Raises `InvalidCursorError`, or `ValidationError` for a limit outside 1 to
        `PAGE_MAX`."""
        jobs, next_cursor = self._jobs_page(cursor, limit)
        return Page(tuple(await self._summaries(jobs)), next_cursor)

    def previous_jobs_page(self, cursor: str | None, limit: int) -> tuple[bool, str | None]:
        """For the page `job_summaries_page(cursor, limit)` answers: whether a page comes
        before it, and that page's cursor (None: the first page). Raises as it does."""
        has, after = self.registry.previous_page(decode_page_cursor(cursor), _page_limit(limit))
        return has, encode_page_cursor(after) if after is not None else None

    async def all_job_stats(
        self, windows: Sequence[str] = ("1h", "24h", "7d", "90d"), *, trend_hours: int = 24
    ) -> list[JobStats]:
        """The statistics of every registered job, in registration order: batch reads of
        `PAGE_MAX` jobs each, concurrently (a constant number of round trips per
        `PAGE_MAX` jobs, never one per job). Raises `ValueError` as `Stats.jobs` does."""
        names = [job.definition.name for job in self.registry]
        now = self.clock.now()
        parts = await asyncio.gather(
            *(
                self.backend.stats.jobs(
                    names[i : i + PAGE_MAX], now, windows, trend_hours=trend_hours
                )
                for i in range(0, len(names), PAGE_MAX)
            )
        )
        return [stats for part in parts for stats in part]

    async def job_stats_page(
        self, cursor: str | None = None, limit: int = PAGE_DEFAULT
    ) -> Page[JobStats]:
        """The statistics (every window and the 24 h trend) of a page of registered jobs by
        name, in one batch read. Raises as `job_summaries_page` does."""
        jobs, next_cursor = self._jobs_page(cursor, limit)
        names = [job.definition.name for job in jobs]
        stats = await self.backend.stats.jobs(names, self.clock.now()) if names else []
        return Page(tuple(stats), next_cursor)

    async def schedules_page(
        self, cursor: str | None = None, limit: int = PAGE_DEFAULT
    ) -> Page[ScheduleState]:
        """Up to `limit` schedules by id after `cursor`, in one read. Raises as
        `job_summaries_page` does."""
        page = await self.backend.schedules.list_after(
            decode_page_cursor(cursor), _page_limit(limit)
        )
        return Page(page.items, encode_page_cursor(page.next_cursor) if page.next_cursor else None)

    async def audit_trail(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        scan: int = FILTER_SCAN,
    ) -> FilteredPage[AuditEntry]:
        """Audit entries newest first, only those of `actor` and of `action` when given.

        The log is read a page of `limit` at a time from `cursor` until `limit` entries
        matched or `scan` entries were read, so a filter that matches little costs at most
        about `scan` entries per call; `next_cursor` continues where the reading stopped,
        and a page may hold up to ``2 * limit - 1`` entries (whole log pages are kept, so
        no match is skipped between pages).
        """

        def matches(entry: AuditEntry) -> bool:
            return (actor is None or entry.actor == actor) and (
                action is None or entry.action == action
            )

        async def read(at: str | None, size: int) -> Page[AuditEntry]:
            return await self.backend.audit.list(at, size)

        return await _filtered(read, matches, cursor, limit, scan)

    async def find_runs(
        self,
        *,
        job: str | None = None,
        states: frozenset[RunState] | None = None,
        trigger: RunTrigger | None = None,
        since: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
        scan: int = FILTER_SCAN,
    ) -> FilteredPage[Run]:
        """Runs newest first by job and state (as the history filters them), and by trigger
        and enqueued at or after `since` (filtered here, bounded by `scan` as in
        `audit_trail`; the first run older than `since` ends the listing)."""

        async def read(at: str | None, size: int) -> Page[Run]:
            return await self.backend.history.list(job=job, states=states, cursor=at, limit=size)

        def older(run: Run) -> bool:
            return since is not None and run.enqueued_at < since

        def matches(run: Run) -> bool:
            return (trigger is None or run.trigger == trigger) and not older(run)

        return await _filtered(read, matches, cursor, limit, scan, beyond=older)

    # --- actions -------------------------------------------------------------------------

    async def trigger(
        self,
        actor: Actor,
        job: str,
        payload: Payload | None = None,
        *,
        priority: Priority | int | str | None = None,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Enqueue a run of `job` now (or after `delay`); returns its run id (the first run's
        for an idempotent repeat; `trigger_enqueued` says which it was)."""
        answer = await self.trigger_enqueued(
            actor, job, payload, priority=priority, delay=delay, idempotency_key=idempotency_key
        )
        return answer.run_id

    async def trigger_enqueued(
        self,
        actor: Actor,
        job: str,
        payload: Payload | None = None,
        *,
        priority: Priority | int | str | None = None,
        delay: timedelta | None = None,
        idempotency_key: str | None = None,
    ) -> Enqueued:
        """As `trigger`, answering the run id and whether it is new: ``created`` is False
        when `idempotency_key` was seen within the job's window and nothing was enqueued."""

        async def act() -> Enqueued:
            request = self.registry.request(
                Job(job, dict(payload or {}), priority, delay, idempotency_key), self.clock.now()
            )
            [answer] = await self.backend.queue.enqueue([request])
            return answer

        return await self._audited(
            actor, Action.JOB_TRIGGER, job, act,
            lambda r: {"run_id": r.run_id} if r.created else {"run_id": r.run_id,
                                                               "duplicate": True},
        )  # fmt: skip

    async def set_job_paused(self, actor: Actor, job: str, *, paused: bool) -> None:
        """Pause one job (its runs wait in order; running ones finish), or resume it."""

        async def act() -> None:
            name = self.registry.get(job).definition.name
            await (self.backend.queue.pause(name) if paused else self.backend.queue.resume(name))

        action = Action.JOB_PAUSE if paused else Action.JOB_RESUME
        await self._audited(actor, action, job, act, lambda _: {"paused": paused})

    async def set_queue_paused(self, actor: Actor, *, paused: bool) -> None:
        """Pause the whole queue (nothing new starts; running jobs finish), or resume it."""

        async def act() -> None:
            await (self.backend.queue.pause() if paused else self.backend.queue.resume())

        action = Action.QUEUE_PAUSE if paused else Action.QUEUE_RESUME
        await self._audited(actor, action, "queue", act, lambda _: {"paused": paused})

    async def cancel(self, actor: Actor, run_id: str) -> Run:
        """Cancel a run that has not finished: a waiting one at once, a running one by a
        cancel request its worker acts on (`JobQueue.cancel`). The audit entry records the
        state after it and, for a running run, that a cancel was requested. Raises
        `RunNotFoundError` or `IllegalTransitionError` (a finished run)."""

        async def act() -> Run:
            return await self.backend.queue.cancel(run_id)

        def after(run: Run) -> dict[str, Any]:
            if run.state is RunState.ACTIVE:
                return {"state": run.state.value, "cancel_requested": True}
            return {"state": run.state.value}

        return await self._audited(actor, Action.RUN_CANCEL, run_id, act, after)

    async def workflows(self, cursor: str | None = None, limit: int = 50) -> Page[Workflow]:
        """Workflows, newest first (`Workflows.list`)."""
        return await self.backend.workflows.list(cursor, limit)

    async def workflow(self, workflow_id: str) -> WorkflowView:
        """One workflow with its steps' runs. Raises `WorkflowNotFoundError`."""
        workflow, _ = await self.backend.workflows.get(workflow_id)
        members = [m for m in workflow.members() if m.run_id is not None]
        # Concurrently: a page refreshing every 10 s must not wait a round trip per step.
        found = await asyncio.gather(*(self._run_or_none(m.run_id or "") for m in members))
        runs = {m.name: run for m, run in zip(members, found, strict=True) if run is not None}
        return WorkflowView(workflow, runs)

    async def _run_or_none(self, run_id: str) -> Run | None:
        try:
            return await self.backend.history.get(run_id)
        except RunNotFoundError:  # cleaned from history
            return None

    async def cancel_workflow(self, actor: Actor, workflow_id: str) -> Workflow:
        """Cancel a workflow (`cancel_workflow`), audited with its state after and how many
        runs were cancelled. Raises `WorkflowNotFoundError`."""

        async def act() -> tuple[Workflow, int]:
            return await cancel_workflow(
                self.backend.workflows, self.backend.queue, self.clock, workflow_id
            )

        def after(result: tuple[Workflow, int]) -> dict[str, Any]:
            return {"state": result[0].state.value, "runs_cancelled": result[1]}

        cancelled, _ = await self._audited(actor, Action.WORKFLOW_CANCEL, workflow_id, act, after)
        return cancelled

    async def bulk(
        self, actor: Actor, action: BulkAction, selection: RunSelection, *, limit: int = BULK_LIMIT
    ) -> BulkResult:
        """Cancel, retry or delete every run `selection` matches (only the states the action
        applies to, `BULK_STATES`), at most `limit` of them, audited as one entry with the
        selection and the counts. A run that moved on meanwhile (finished before its cancel,
        retried by someone else) is skipped and counted, never an error."""
        if not 1 <= limit <= BULK_LIMIT:
            raise InvalidJobError("limit", f"must be 1 to {BULK_LIMIT}, got {limit}")

        async def act() -> BulkResult:
            targets, more = await self._select(selection, BULK_STATES[action], limit)
            done, skipped, new_ids = 0, 0, []
            for run_id in targets:
                try:
                    if action is BulkAction.CANCEL:
                        await self.backend.queue.cancel(run_id)
                    elif action is BulkAction.RETRY:
                        new_ids.append(await self.backend.dead_letters.retry(run_id))
                    else:
                        await self.backend.dead_letters.delete(run_id)
                except (IllegalTransitionError, NotFoundError):
                    skipped += 1
                else:
                    done += 1
            return BulkResult(action, done, skipped, more, tuple(new_ids))

        bulk_actions = {BulkAction.CANCEL: Action.RUNS_CANCEL, BulkAction.RETRY: Action.RUNS_RETRY,
                        BulkAction.DELETE: Action.RUNS_DELETE}  # fmt: skip
        return await self._audited(
            actor,
            bulk_actions[action],
            "runs",
            act,
            lambda r: {"done": r.done, "skipped": r.skipped, "more": r.more},
            before=selection.describe(),
        )

    async def bulk_preview(
        self, action: BulkAction, selection: RunSelection, *, limit: int = BULK_LIMIT
    ) -> tuple[int, bool]:
        """How many runs `bulk` would act on now (at most `limit`), and whether more match:
        what a confirmation states before the action."""
        targets, more = await self._select(selection, BULK_STATES[action], limit)
        return len(targets), more

    async def _select(
        self, selection: RunSelection, applicable: frozenset[RunState], limit: int
    ) -> tuple[list[str], bool]:
        """The ids of up to `limit` runs `selection` matches in `applicable` states, and
        whether more match."""
        states = applicable if selection.states is None else selection.states & applicable
        if not states:
            return [], False
        wanted = attrs.evolve(selection, states=states)
        if selection.run_ids is not None:
            found = []
            for run_id in dict.fromkeys(selection.run_ids):
                with contextlib.suppress(NotFoundError):
                    run = await self.backend.history.get(run_id)
                    if wanted.matches(run):
                        found.append(run.id)
            return found[:limit], len(found) > limit
        if wanted.job is not None:
            self.registry.get(wanted.job)  # an unknown job is an error, not nothing
        ids: list[str] = []
        cursor: str | None = None
        while True:
            # Dead runs come from the dead letters (history still says dead of one retried).
            page = await (
                self.backend.dead_letters.list(cursor=cursor, limit=500)
                if states == {RunState.DEAD}
                else self.backend.history.list(
                    job=wanted.job, states=states, cursor=cursor, limit=500
                )
            )
            for run in page.items:
                if wanted.matches(run):
                    if len(ids) == limit:
                        return ids, True
                    ids.append(run.id)
            cursor = page.next_cursor
            if cursor is None:
                return ids, False

    async def retry_dead(self, actor: Actor, run_id: str) -> str:
        """Retry one dead letter as a new run; returns its id."""

        async def act() -> str:
            return await self.backend.dead_letters.retry(run_id)

        return await self._audited(actor, Action.DLQ_RETRY, run_id, act, lambda r: {"run_id": r})

    async def retry_all_dead(self, actor: Actor) -> list[str]:
        """Retry every dead letter; returns the new run ids, oldest dead letter first."""

        async def act() -> list[str]:
            return list(await self.backend.dead_letters.retry_all())

        return await self._audited(
            actor, Action.DLQ_RETRY_ALL, "dlq", act, lambda r: {"count": len(r)}
        )

    async def delete_dead(self, actor: Actor, run_id: str) -> None:
        """Forget one dead letter. Raises `DeadLetterNotFoundError`."""

        async def act() -> None:
            await self.backend.dead_letters.delete(run_id)

        await self._audited(actor, Action.DLQ_DELETE, run_id, act, lambda _: None)

    async def purge_dead(self, actor: Actor) -> int:
        """Forget every dead letter; returns how many there were."""

        async def act() -> int:
            return await self.backend.dead_letters.purge()

        return await self._audited(actor, Action.DLQ_PURGE, "dlq", act, lambda n: {"removed": n})

    async def clean_history(
        self, actor: Actor, older_than: timedelta, states: frozenset[RunState] | None = None
    ) -> int:
        """Delete finished runs enqueued more than `older_than` ago (only `states`, when
        given); returns how many. Dead letters stay until retried or deleted."""

        async def act() -> int:
            return await self.backend.history.clean(self.clock.now() - older_than, states)

        kept = sorted(s.value for s in (states or FINAL_STATES))
        return await self._audited(
            actor, Action.HISTORY_CLEAN, "history", act,
            lambda n: {"removed": n, "older_than_days": older_than / timedelta(days=1),
                       "states": kept},
        )  # fmt: skip

    async def create_schedule(self, actor: Actor, schedule: Schedule) -> ScheduleState:
        """Store a runtime schedule for a registered job. Raises `JobNotFoundError`,
        `PayloadError` for a payload runs could not carry, or `ScheduleExistsError` when its
        id exists or is declared in code."""

        async def act() -> ScheduleState:
            self._check_schedule(schedule)
            if schedule.id in self._declared_ids():
                raise ScheduleExistsError(schedule.id, declared=True)
            return await self.backend.schedules.create(schedule, self.clock.now())

        return await self._audited(actor, Action.SCHEDULE_CREATE, schedule.id, act, _schedule_facts)

    async def update_schedule(self, actor: Actor, schedule: Schedule) -> ScheduleState:
        """Replace a runtime schedule's definition, keeping its runtime state. Raises
        `ScheduleNotFoundError`, `JobNotFoundError` for an unregistered job, `PayloadError`
        for a payload runs could not carry, or `DeclaredScheduleError` for a schedule
        declared in code (code owns those)."""
        before: dict[str, Any] = {}

        async def act() -> ScheduleState:
            self._check_schedule(schedule)
            current = await self.backend.schedules.get(schedule.id)
            before.update(_schedule_facts(current))
            _refuse_declared(current, "edited")
            return await self.backend.schedules.update(schedule, self.clock.now())

        return await self._audited(
            actor, Action.SCHEDULE_UPDATE, schedule.id, act, _schedule_facts, before=before
        )

    async def edit_schedule(
        self, actor: Actor, schedule_id: str, change: Callable[[Schedule], Schedule]
    ) -> ScheduleState:
        """Replace a runtime schedule's definition with `change` applied to the stored one (a
        partial edit), keeping its runtime state; audited as `Action.SCHEDULE_UPDATE`. Raises
        `ScheduleNotFoundError`, `JobNotFoundError`, `DeclaredScheduleError` for a schedule
        declared in code, or what `change` raises (a `ValidationError` for a bad value), each
        audited as failed."""
        before: dict[str, Any] = {}

        async def act() -> ScheduleState:
            current = await self.backend.schedules.get(schedule_id)
            before.update(_schedule_facts(current))
            _refuse_declared(current, "edited")
            schedule = attrs.evolve(change(current.schedule), id=schedule_id)
            self._check_schedule(schedule)
            return await self.backend.schedules.update(schedule, self.clock.now())

        return await self._audited(
            actor, Action.SCHEDULE_UPDATE, schedule_id, act, _schedule_facts, before=before
        )

    async def set_schedule_paused(
        self, actor: Actor, schedule_id: str, *, paused: bool
    ) -> ScheduleState:
        """Pause a schedule (its slots are ledgered as paused) or resume it."""

        async def act() -> ScheduleState:
            return await self.backend.schedules.set_paused(schedule_id, paused=paused)

        action = Action.SCHEDULE_PAUSE if paused else Action.SCHEDULE_RESUME
        return await self._audited(actor, action, schedule_id, act, lambda _: {"paused": paused})

    async def delete_schedule(self, actor: Actor, schedule_id: str) -> None:
        """Delete a runtime schedule (its ledger stays for the retention). Raises
        `ScheduleNotFoundError`, or `DeclaredScheduleError` for a schedule declared in code
        (remove it from the code instead; pausing it works meanwhile)."""
        before: dict[str, Any] = {}

        async def act() -> None:
            current = await self.backend.schedules.get(schedule_id)
            before.update(_schedule_facts(current))
            _refuse_declared(current, "deleted")
            await self.backend.schedules.delete(schedule_id)

        await self._audited(
            actor, Action.SCHEDULE_DELETE, schedule_id, act, lambda _: None, before=before
        )

    async def mute_alert(self, actor: Actor, target: str, duration: timedelta) -> datetime:
        """Mute an alert (``rule:subject``) or a whole rule for `duration` (zero unmutes):
        while muted, it is recorded but no notice is sent; returns when the mute ends.
        Raises `ValidationError` for an unknown rule or a negative duration."""
        now = self.clock.now()

        async def act() -> datetime:
            mute_target(target)
            if duration < timedelta(0):
                raise ValidationError("a mute's duration cannot be negative")
            until = now + duration
            await change_book(
                self.backend.shared, now, lambda book: (book.muted(target, until, now), None)
            )
            return until

        return await self._audited(
            actor, Action.ALERT_MUTE, target, act,
            lambda until: {"until": _iso(until), "minutes": duration / timedelta(minutes=1)},
        )  # fmt: skip

    def _check_schedule(self, schedule: Schedule) -> None:
        # Every fired run carries the schedule's payload: hold it to the limit runs have.
        self.registry.get(schedule.job)
        encode_payload(schedule.job, schedule.payload, self.backend.config.payload_limit)

    def _declared_ids(self) -> set[str]:
        return {s.id for job in self.registry for s in job.definition.schedules}

    async def refused(self, actor: Actor, action: str, target: str, detail: str) -> None:
        """Record an attempt stopped before any use case ran (auth, role, rate limit)."""
        await self._record(actor, action, target, Outcome.REFUSED, detail=detail)

    # --- the audit -------------------------------------------------------------------------

    async def _audited(
        self,
        actor: Actor,
        action: Action,
        target: str,
        act: Callable[[], Awaitable[T]],
        facts: Callable[[T], Mapping[str, Any] | None],
        *,
        before: Mapping[str, Any] | None = None,
    ) -> T:
        try:
            result = await act()
        except HubSchedulerError as exc:
            await self._record(actor, action, target, Outcome.FAILED, detail=str(exc),
                               before=before or None)  # fmt: skip
            raise
        await self._record(
            actor, action, target, Outcome.OK, before=before or None, after=facts(result)
        )
        return result

    async def _record(
        self,
        actor: Actor,
        action: str,
        target: str,
        outcome: Outcome,
        *,
        detail: str | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        entry = AuditEntry(
            id=secrets.token_hex(8),
            at=self.clock.now(),
            actor=actor.subject,
            roles=actor.roles,
            action=action,
            target=target,
            outcome=outcome.value,
            request_id=actor.request_id,
            client=actor.client,
            before=before,
            after=after,
            detail=detail,
            channel=actor.channel,
        )
        audit_logger.info(
            "%s %s on %s by %s via %s", action, outcome.value, target, actor.subject,
            actor.channel,
        )  # fmt: skip
        try:
            await self.backend.audit.record(entry)
        except HubSchedulerError:
            # The action itself happened (or was refused); a lost entry must not undo that.
            audit_logger.exception("audit entry could not be stored: %s", entry)


def encode_page_cursor(after: str) -> str:
    """The cursor of an admin page that ends at key `after` (a job name, a schedule id):
    opaque to clients, ``k1.`` and the key in unpadded base64url."""
    return PAGE_CURSOR_MARK + base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")


def decode_page_cursor(cursor: str | None) -> str | None:
    """The key a cursor of `encode_page_cursor` ends at (None for None). Raises
    `InvalidCursorError` for anything else."""
    if cursor is None:
        return None
    body = cursor.removeprefix(PAGE_CURSOR_MARK)
    if body == cursor or not body or len(body) > 4096:
        raise InvalidCursorError(cursor)
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidCursorError(cursor) from None


async def every_page(read: Callable[[str | None, int], Awaitable[Page[T]]]) -> list[T]:
    """Every item of a paged listing (`AdminService.job_summaries_page`, ...), read
    `PAGE_MAX` at a time by following its cursor."""
    items: list[T] = []
    cursor = None
    while True:
        page = await read(cursor, PAGE_MAX)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


def _page_limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidPageLimitError(limit, PAGE_MAX)
    return limit


async def _filtered(
    read: Callable[[str | None, int], Awaitable[Page[T]]],
    matches: Callable[[T], bool],
    cursor: str | None,
    limit: int,
    scan: int,
    *,
    beyond: Callable[[T], bool] | None = None,
) -> FilteredPage[T]:
    """Whole pages of `read` from `cursor`, keeping what `matches`, until `limit` matched,
    `scan` items were read or the listing ended; an item `beyond` the range sought ends it
    (it and everything after it are out of range)."""
    kept: list[T] = []
    scanned = 0
    at = cursor
    while True:
        page = await read(at, limit)
        scanned += len(page.items)
        kept.extend(item for item in page.items if matches(item))
        at = page.next_cursor
        if beyond is not None and any(beyond(item) for item in page.items):
            at = None
        if at is None or len(kept) >= limit or scanned >= scan:
            return FilteredPage(tuple(kept), at, scanned)


def _iso(instant: datetime | None) -> str | None:
    """An instant as the API writes every timestamp: ISO 8601 UTC with a ``Z``."""
    return None if instant is None else iso_z(instant)


def _refuse_declared(state: ScheduleState, action: str) -> None:
    """Code owns the definition of a declared schedule: an edit or delete made elsewhere would
    be undone by the next scheduler start, so it is refused (pause and resume are kept)."""
    if state.declared:
        raise DeclaredScheduleError(state.schedule.id, state.schedule.job, action)


def _schedule_facts(state: ScheduleState) -> dict[str, Any]:
    schedule = state.schedule
    return {
        "job": schedule.job,
        "trigger": schedule.describe(),
        "timezone": schedule.timezone,
        "paused": state.paused,
        "next_fire": _iso(state.next_fire),
    }
