"""The API's shapes: request bodies and response views, pydantic with unknown fields refused.

Views are built from domain values with ``View.from_domain(...)`` (handlers never return
domain objects), so each JSON shape has one source: the API serialises the views, the
dashboard renders their dumps, and the CLI prints them with ``--json`` through `run_json`,
`schedule_json`, `slot_json`, `snapshot_json` and `health_json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import attrs
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from hub_scheduler.domain.admin import (
    BULK_LIMIT,
    BulkResult,
    JobSummary,
    QueueHealth,
    QueueStatus,
    RunSelection,
)
from hub_scheduler.domain.admin import WorkflowView as AdminWorkflowView
from hub_scheduler.domain.errors import InvalidScheduleError
from hub_scheduler.domain.model import (
    Attempt,
    AttemptOutcome,
    ErrorInfo,
    Priority,
    Progress,
    Run,
    RunState,
    RunTrigger,
    StoredResult,
)
from hub_scheduler.domain.ports import (
    AuditEntry,
    BackendVitals,
    HourStats,
    JobStats,
    Page,
    QueueSnapshot,
    SchedulerInfo,
    ScheduleState,
    SlotRecord,
    WindowStats,
    WorkerInfo,
)
from hub_scheduler.domain.schedule import (
    Cron,
    Every,
    FirePreview,
    MisfirePolicy,
    Once,
    Schedule,
    SlotOutcome,
)
from hub_scheduler.domain.workflow import (
    FailurePolicy,
    StepState,
    Workflow,
    WorkflowState,
    WorkflowStep,
)

MAX_DELAY = timedelta(days=365).total_seconds()
PriorityName = Literal["critical", "high", "normal", "low"]
#: The years a schedule's instants may name: wide, yet far from the ends of `datetime`, so
#: converting to UTC or stepping to the next fire cannot overflow.
FIRST_YEAR, LAST_YEAR = 1970, 8999


def _plausible_year(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    return value


Instant = Annotated[datetime, AfterValidator(_plausible_year)]


class _Strict(BaseModel):
    # Validators and serializers are built on first use: a CLI command that shows one view
    # does not pay for the ~40 the API has.
    model_config = ConfigDict(extra="forbid", defer_build=True)


# --- request bodies ----------------------------------------------------------------------


class TriggerBody(_Strict):
    """Run a job now (or after a delay)."""

    payload: dict[str, Any] | None = None
    priority: Literal["critical", "high", "normal", "low", 1, 5, 10, 15] | None = None
    delay_seconds: float | None = Field(default=None, ge=0, le=MAX_DELAY)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    @property
    def delay(self) -> timedelta | None:
        """The delay asked for, if any."""
        return timedelta(seconds=self.delay_seconds) if self.delay_seconds else None


class NamedTriggerBody(TriggerBody):
    """`TriggerBody` naming the job."""

    name: str = Field(min_length=1, max_length=100)


class CleanBody(_Strict):
    """Remove finished history older than an age."""

    older_than_days: float = Field(gt=0, le=3650)
    states: list[Literal["succeeded", "dead", "cancelled"]] | None = None

    @property
    def run_states(self) -> frozenset[RunState] | None:
        """The states to clean (None: every final state)."""
        return frozenset(RunState(s) for s in self.states) if self.states else None


class BulkBody(_Strict):
    """Which runs a bulk action is for: `run_ids`, or everything matching the filter (both:
    the ids that match). Only the states the action applies to are touched."""

    run_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=BULK_LIMIT
    )
    job: str | None = Field(default=None, min_length=1, max_length=100)
    states: list[RunState] | None = Field(default=None, max_length=len(RunState))
    trigger: RunTrigger | None = None
    enqueued_after: Annotated[AwareDatetime, AfterValidator(_plausible_year)] | None = None
    enqueued_before: Annotated[AwareDatetime, AfterValidator(_plausible_year)] | None = None
    limit: int = Field(default=BULK_LIMIT, ge=1, le=BULK_LIMIT)

    def selection(self) -> RunSelection:
        """The selection it describes."""
        return RunSelection(
            run_ids=None if self.run_ids is None else tuple(self.run_ids),
            job=self.job,
            states=None if self.states is None else frozenset(self.states),
            trigger=self.trigger,
            enqueued_after=self.enqueued_after,
            enqueued_before=self.enqueued_before,
        )


class MisfireBody(_Strict):
    """A misfire policy."""

    kind: Literal["skip", "run_once", "catch_up"] = "skip"
    grace_seconds: float = Field(default=60, ge=0, le=86400 * 7)
    max_runs: int = Field(default=1, ge=1, le=1000)


class ScheduleBody(_Strict):
    """A schedule created at runtime: exactly one of cron, every_seconds or at."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
    job: str = Field(min_length=1, max_length=100)
    cron: str | None = Field(default=None, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    every_seconds: float | None = Field(default=None, ge=1, le=86400 * 3650)
    at: Instant | None = None
    start: Instant | None = None
    end: Instant | None = None
    max_runs: int | None = Field(default=None, ge=1)
    misfire: MisfireBody = Field(default_factory=MisfireBody)
    payload: dict[str, Any] = Field(default_factory=dict)


class SchedulePatch(_Strict):
    """Fields to change on a schedule; the rest stay."""

    cron: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    every_seconds: float | None = Field(default=None, ge=1, le=86400 * 3650)
    at: Instant | None = None
    start: Instant | None = None
    end: Instant | None = None
    max_runs: int | None = Field(default=None, ge=1)
    misfire: MisfireBody | None = None
    payload: dict[str, Any] | None = None


def misfire_policy(body: MisfireBody) -> MisfirePolicy:
    """The domain policy for a body."""
    grace = timedelta(seconds=body.grace_seconds)
    if body.kind == "catch_up":
        return MisfirePolicy.catch_up(body.max_runs, grace)
    if body.kind == "run_once":
        return MisfirePolicy.run_once(grace)
    return MisfirePolicy.skip(grace)


def schedule_from_body(body: ScheduleBody) -> Schedule:
    """The domain schedule for a creation body (domain errors explain bad values)."""
    given = [x is not None for x in (body.cron, body.every_seconds, body.at)]
    if sum(given) != 1:
        raise InvalidScheduleError("trigger", "give exactly one of cron, every_seconds or at")
    trigger: Cron | Every | Once
    if body.cron is not None:
        trigger = Cron(body.cron, body.timezone)
    elif body.every_seconds is not None:
        trigger = Every(timedelta(seconds=body.every_seconds))
    else:
        assert body.at is not None
        trigger = Once(body.at)
    return Schedule(
        trigger=trigger,
        job=body.job,
        id=body.id,
        start=body.start,
        end=body.end,
        max_runs=body.max_runs,
        misfire=misfire_policy(body.misfire),
        payload=body.payload,
    )


def patched_schedule(old: Schedule, patch: SchedulePatch) -> Schedule:
    """`old` with the fields `patch` sets (an explicit null clears start, end or max_runs)."""
    given = patch.model_fields_set
    trigger: Cron | Every | Once = old.trigger
    if patch.cron is not None:
        trigger = Cron(patch.cron, patch.timezone or old.timezone)
    elif patch.every_seconds is not None:
        trigger = Every(timedelta(seconds=patch.every_seconds))
    elif patch.at is not None:
        trigger = Once(patch.at)
    elif patch.timezone is not None and isinstance(trigger, Cron):
        trigger = Cron(trigger.expression, patch.timezone)
    return attrs.evolve(
        old,
        trigger=trigger,
        start=patch.start if "start" in given else old.start,
        end=patch.end if "end" in given else old.end,
        max_runs=patch.max_runs if "max_runs" in given else old.max_runs,
        misfire=misfire_policy(patch.misfire) if patch.misfire is not None else old.misfire,
        payload=patch.payload if patch.payload is not None else old.payload,
    )


# --- response views ------------------------------------------------------------------------
# Datetimes are aware UTC and serialise as ISO 8601 with a "Z" (local ones with their offset).


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


class StatusView(_Strict):
    """A probe's answer."""

    status: Literal["ok", "ready"]


class ErrorView(_Strict):
    """Why an attempt failed; the traceback is cut to its last 4096 characters."""

    type: str
    message: str
    traceback: str

    @classmethod
    def from_domain(cls, error: ErrorInfo | None) -> ErrorView | None:
        """The view of an error summary (None for none)."""
        return None if error is None else cls(**attrs.asdict(error))


class AttemptView(_Strict):
    """One execution of a run's handler: when, where, how it ended, why it failed and the
    retry delay chosen after it."""

    number: int = Field(description="The attempt number it ran as (a stall reruns it).")
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    worker: str | None
    outcome: AttemptOutcome
    error: ErrorView | None
    retry_delay_seconds: float | None = Field(
        description="For a retried failure: the backoff before the next attempt."
    )
    retry_at: datetime | None

    @classmethod
    def from_domain(cls, attempt: Attempt) -> AttemptView:
        """The view of one attempt."""
        return cls(
            number=attempt.number,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            duration_seconds=attempt.duration.total_seconds(),
            worker=attempt.worker,
            outcome=attempt.outcome,
            error=ErrorView.from_domain(attempt.error),
            retry_delay_seconds=_seconds(attempt.retry_delay),
            retry_at=attempt.retry_at,
        )


class ProgressView(_Strict):
    """The latest progress a running attempt reported (``ctx.progress``, or taskiq's
    ``ProgressTracker``)."""

    at: datetime
    fraction: float | None = Field(description="Done so far, 0 to 1; null: unknown.")
    message: str
    state: str = Field(description="taskiq's progress state (STARTED, RETRY, ...).")

    @classmethod
    def from_domain(cls, progress: Progress | None) -> ProgressView | None:
        """The view of a progress report (None for none)."""
        if progress is None:
            return None
        return cls(
            at=progress.at,
            fraction=progress.fraction,
            message=progress.message,
            state=progress.state,
        )


class RunView(_Strict):
    """A run with its timing, last error and attempt log (the latest 10 attempts, oldest
    first; `attempts_dropped` counts older ones). One run read alone also has its result
    (what its handler returned, once it succeeded) and its latest progress report."""

    id: str
    job: str
    state: RunState
    priority: Priority
    trigger: RunTrigger
    attempt: int
    payload: dict[str, Any]
    enqueued_at: datetime
    run_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    worker: str | None
    stalls: int
    schedule_id: str | None
    slot: datetime | None
    origin_run_id: str | None
    error: ErrorView | None
    attempts: list[AttemptView]
    attempts_dropped: int
    cancel_requested_at: datetime | None = Field(
        default=None,
        description="When cancelling it was asked while it ran; it ends cancelled once its "
        "handler stops (unless it succeeds first).",
    )
    result: Any = Field(
        default=None, description="What the handler returned (JSON); null: nothing kept."
    )
    result_stored_at: datetime | None = None
    progress: ProgressView | None = None
    workflow_id: str | None = Field(default=None, description="The workflow it is a step of.")
    workflow_step: str | None = Field(default=None, description="Its step's name there.")

    @classmethod
    def with_outputs(
        cls, run: Run, stored: StoredResult | None, progress: Progress | None
    ) -> RunView:
        """The view of `run` with its stored result and latest progress."""
        return cls.from_domain(run).model_copy(
            update={
                "result": None if stored is None else stored.value,
                "result_stored_at": None if stored is None else stored.stored_at,
                "progress": ProgressView.from_domain(progress),
            }
        )

    @classmethod
    def from_domain(cls, run: Run) -> RunView:
        """The view of `run`."""
        return cls(
            id=run.id,
            job=run.job,
            state=run.state,
            priority=run.priority,
            trigger=run.trigger,
            attempt=run.attempt,
            payload=dict(run.payload),
            enqueued_at=run.enqueued_at,
            run_at=run.run_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=_seconds(run.duration),
            worker=run.worker,
            stalls=run.stalls,
            schedule_id=run.schedule_id,
            slot=run.slot,
            origin_run_id=run.origin_run_id,
            error=ErrorView.from_domain(run.error),
            attempts=[AttemptView.from_domain(a) for a in run.attempts],
            attempts_dropped=run.attempts_dropped,
            cancel_requested_at=run.cancel_requested_at,
            workflow_id=run.workflow_id,
            workflow_step=run.workflow_step,
        )


class RunPage(_Strict):
    """Runs newest first; pass `next_cursor` back for the next page (null: no more)."""

    items: list[RunView]
    next_cursor: str | None

    @classmethod
    def from_domain(cls, page: Page[Run]) -> RunPage:
        """The view of a page of runs."""
        return cls(items=[RunView.from_domain(r) for r in page.items], next_cursor=page.next_cursor)


class ScheduleView(_Strict):
    """A schedule in words, with its runtime state."""

    id: str
    job: str
    description: str
    timezone: str
    misfire: str
    paused: bool
    declared_in_code: bool
    origin: Literal["code", "runtime"] = Field(
        description="code: declared on a job in code, which owns its definition (pause and "
        "resume only; edits and deletes answer 409); runtime: created through the API, fully "
        "editable."
    )
    next_fire: datetime | None
    last_fire: datetime | None
    last_outcome: SlotOutcome | None
    runs: int
    payload: dict[str, Any]

    @classmethod
    def from_domain(cls, state: ScheduleState) -> ScheduleView:
        """The view of a stored schedule."""
        schedule = state.schedule
        return cls(
            id=schedule.id,
            job=schedule.job,
            description=schedule.describe(),
            timezone=schedule.timezone,
            misfire=schedule.misfire.describe(),
            paused=state.paused,
            declared_in_code=state.declared,
            origin="code" if state.declared else "runtime",
            next_fire=state.next_fire,
            last_fire=state.last_fire,
            last_outcome=state.last_outcome,
            runs=state.runs,
            payload=dict(schedule.payload),
        )


class FirePreviewView(_Strict):
    """One upcoming fire: UTC instant, local wall time, and a DST note if any."""

    utc: datetime
    local: datetime
    note: str | None

    @classmethod
    def from_domain(cls, fire: FirePreview) -> FirePreviewView:
        """The view of a previewed fire."""
        return cls(utc=fire.utc, local=fire.local, note=fire.note)


class SlotView(_Strict):
    """What became of one slot of a schedule."""

    slot: datetime
    outcome: SlotOutcome
    run_id: str | None
    recorded_at: datetime
    count: int

    @classmethod
    def from_domain(cls, record: SlotRecord) -> SlotView:
        """The view of a ledger record."""
        return cls(
            slot=record.slot,
            outcome=record.outcome,
            run_id=record.run_id,
            recorded_at=record.recorded_at,
            count=record.count,
        )


class SlotPage(_Strict):
    """Slot records newest first; pass `next_cursor` back for the next page."""

    items: list[SlotView]
    next_cursor: str | None

    @classmethod
    def from_domain(cls, page: Page[SlotRecord]) -> SlotPage:
        """The view of a page of the ledger."""
        return cls(
            items=[SlotView.from_domain(r) for r in page.items], next_cursor=page.next_cursor
        )


class DepthView(_Strict):
    """Ready runs per priority."""

    critical: int
    high: int
    normal: int
    low: int


class WorkerView(_Strict):
    """A live worker."""

    id: str
    host: str
    pid: int
    concurrency: int
    active: int
    seen_at: datetime

    @classmethod
    def from_domain(cls, worker: WorkerInfo) -> WorkerView:
        """The view of a worker's last report."""
        return cls(**attrs.asdict(worker))


class SchedulerView(_Strict):
    """A live scheduler and how late it fires on-time slots (p99)."""

    id: str
    seen_at: datetime
    lateness_p99_seconds: float | None

    @classmethod
    def from_domain(cls, scheduler: SchedulerInfo) -> SchedulerView:
        """The view of a scheduler's last report."""
        return cls(
            id=scheduler.id,
            seen_at=scheduler.seen_at,
            lateness_p99_seconds=_seconds(scheduler.lateness_p99),
        )


class SnapshotView(_Strict):
    """The queue at one instant, with the workers serving it."""

    depth: DepthView
    waiting: int
    parked: int
    delayed: int
    active: int
    dead_letters: int
    paused: bool
    paused_jobs: list[str]
    oldest_waiting_seconds: float | None
    completed: int = Field(description="Attempts that succeeded, over every job, ever.")
    failed: int = Field(description="Attempts that failed (retried or dead), ever.")
    workers: list[WorkerView]

    @classmethod
    def fields_of(cls, snapshot: QueueSnapshot, workers: Sequence[WorkerInfo]) -> dict[str, Any]:
        """The snapshot's fields (for this view and those extending it)."""
        depth = {p.name.lower(): snapshot.depth.get(p, 0) for p in sorted(Priority)}
        return {
            "depth": DepthView(**depth),
            "waiting": snapshot.waiting,
            "parked": snapshot.parked,
            "delayed": snapshot.delayed,
            "active": snapshot.active,
            "dead_letters": snapshot.dead,
            "paused": snapshot.paused,
            "paused_jobs": sorted(snapshot.paused_jobs),
            "oldest_waiting_seconds": _seconds(snapshot.oldest_waiting),
            "completed": snapshot.succeeded,
            "failed": snapshot.failed,
            "workers": [WorkerView.from_domain(w) for w in workers],
        }

    @classmethod
    def from_domain(cls, snapshot: QueueSnapshot, workers: Sequence[WorkerInfo]) -> SnapshotView:
        """The view of a snapshot and the live workers."""
        return cls(**cls.fields_of(snapshot, workers))


class BackendVitalsView(_Strict):
    """The store's own health as far as the backend tells (null: not known there)."""

    kind: str = Field(description="redis or postgresql.")
    used_memory_bytes: int | None = None
    max_memory_bytes: int | None = Field(None, description="Redis maxmemory (null: no limit).")
    memory_ratio: float | None = Field(None, description="Used over maxmemory.")
    eviction_policy: str | None = Field(
        None, description="Redis maxmemory-policy; anything but noeviction drops queued runs."
    )
    connected_clients: int | None = None
    ops_per_second: float | None = None
    evicted_keys: int | None = None
    connections: int | None = Field(None, description="PostgreSQL connections to the database.")
    table_bytes: dict[str, int] = Field(
        default_factory=dict, description="PostgreSQL: each hub table's size, indexes included."
    )
    problems: list[str] = Field(
        default_factory=list, description="What makes the store unsafe for the queue."
    )

    @classmethod
    def from_domain(cls, vitals: BackendVitals) -> BackendVitalsView:
        """The view of a vitals reading."""
        ratio = vitals.memory_ratio
        return cls(
            kind=vitals.kind,
            used_memory_bytes=vitals.used_memory,
            max_memory_bytes=vitals.max_memory,
            memory_ratio=None if ratio is None else round(ratio, 4),
            eviction_policy=vitals.eviction_policy,
            connected_clients=vitals.connected_clients,
            ops_per_second=vitals.ops_per_second,
            evicted_keys=vitals.evicted_keys,
            connections=vitals.connections,
            table_bytes=dict(vitals.table_bytes),
            problems=list(vitals.problems),
        )


class QueueHealthView(SnapshotView):
    """The snapshot with the live schedulers and the status: ok, or degraded (paused, or no
    live worker, or schedules but no live scheduler, or a schedule overdue beyond its grace,
    or a schedule declared in code missing from the store, or a store that may drop runs)."""

    schedulers: list[SchedulerView]
    status: QueueStatus
    overdue_schedules: list[str] = Field(
        default_factory=list,
        description="Schedules whose slot passed more than their misfire grace ago unfired.",
    )
    missing_schedules: list[str] = Field(
        default_factory=list,
        description="Schedules declared in code that the store does not hold.",
    )
    alerts: list[str] = Field(
        default_factory=list,
        description="Alerts firing now (rule:subject); details under /alerts.",
    )
    backend: BackendVitalsView | None = Field(
        None, description="The store's own health (null: the backend reports none)."
    )

    @classmethod
    def from_health(cls, health: QueueHealth) -> QueueHealthView:
        """The view of the queue's health."""
        return cls(
            **cls.fields_of(health.snapshot, health.workers),
            schedulers=[SchedulerView.from_domain(s) for s in health.schedulers],
            status=health.status,
            overdue_schedules=list(health.overdue_schedules),
            missing_schedules=list(health.missing_schedules),
            alerts=list(health.alerts),
            backend=None if health.vitals is None else BackendVitalsView.from_domain(health.vitals),
        )


class CountsView(_Strict):
    """Finished attempts by outcome."""

    succeeded: int
    failed: int
    dead: int


class JobSummaryView(_Strict):
    """A registered job: definition, pause flag, schedules, last run and the last 24 h."""

    name: str
    description: str
    priority: PriorityName
    timeout_seconds: float
    max_retries: int
    paused: bool
    schedules: list[ScheduleView]
    last_run: RunView | None
    last_24h: CountsView

    @classmethod
    def fields_of(cls, summary: JobSummary) -> dict[str, Any]:
        """The summary's fields (for this view and `JobDetailView`)."""
        definition = summary.job.definition
        day = summary.last_24h
        return {
            "name": definition.name,
            "description": definition.description,
            "priority": definition.priority.name.lower(),
            "timeout_seconds": definition.timeout.total_seconds(),
            "max_retries": definition.retry.max_retries,
            "paused": summary.paused,
            "schedules": [ScheduleView.from_domain(s) for s in summary.schedules],
            "last_run": RunView.from_domain(summary.last_run) if summary.last_run else None,
            "last_24h": CountsView(succeeded=day.succeeded, failed=day.failed, dead=day.dead),
        }

    @classmethod
    def from_domain(cls, summary: JobSummary) -> JobSummaryView:
        """The view of a job summary."""
        return cls(**cls.fields_of(summary))


class JobDetailView(JobSummaryView):
    """A job's summary with its recent runs, newest first."""

    recent_runs: list[RunView]

    @classmethod
    def from_summary(cls, summary: JobSummary, recent: Sequence[Run]) -> JobDetailView:
        """The view of a summary and the job's recent runs."""
        return cls(**cls.fields_of(summary), recent_runs=[RunView.from_domain(r) for r in recent])


_ESTIMATE = (
    "Estimated within 10 % (0.5 ms below 1 ms): the midpoint of a histogram bucket of 13 "
    "per decade."
)


class WindowView(_Strict):
    """Outcomes in one window, the success rate (null: nothing finished), and percentiles of
    attempt durations and of queue waits (due to started), each an estimate within 10 %."""

    succeeded: int
    failed: int
    dead: int
    success_rate: float | None
    duration_p50_seconds: float | None = Field(description=_ESTIMATE)
    duration_p95_seconds: float | None = Field(description=_ESTIMATE)
    queue_wait_p50_seconds: float | None = Field(description=_ESTIMATE)
    queue_wait_p95_seconds: float | None = Field(description=_ESTIMATE)

    @classmethod
    def from_domain(cls, window: WindowStats) -> WindowView:
        """The view of one window."""
        return cls(
            succeeded=window.succeeded,
            failed=window.failed,
            dead=window.dead,
            success_rate=window.success_rate,
            duration_p50_seconds=_seconds(window.p50),
            duration_p95_seconds=_seconds(window.p95),
            queue_wait_p50_seconds=_seconds(window.wait_p50),
            queue_wait_p95_seconds=_seconds(window.wait_p95),
        )


class HourView(_Strict):
    """One clock hour of a job: its outcomes and the durations of the attempts that
    finished in it (null when none did)."""

    hour: datetime
    succeeded: int
    failed: int
    dead: int
    duration_p50_seconds: float | None = Field(description=_ESTIMATE)
    duration_p95_seconds: float | None = Field(description=_ESTIMATE)

    @classmethod
    def from_domain(cls, hour: HourStats) -> HourView:
        """The view of one hour."""
        return cls(
            hour=hour.hour,
            succeeded=hour.succeeded,
            failed=hour.failed,
            dead=hour.dead,
            duration_p50_seconds=_seconds(hour.p50),
            duration_p95_seconds=_seconds(hour.p95),
        )


class JobStatsView(_Strict):
    """A job's statistics: windows (1h, 24h, 7d, 90d), hourly trend and last success."""

    job: str
    windows: dict[str, WindowView]
    hourly: list[HourView]
    last_success: datetime | None

    @classmethod
    def from_domain(cls, stats: JobStats) -> JobStatsView:
        """The view of a job's statistics."""
        return cls(
            job=stats.job,
            windows={name: WindowView.from_domain(w) for name, w in stats.windows.items()},
            hourly=[HourView.from_domain(h) for h in stats.hourly],
            last_success=stats.last_success,
        )


class AuditEntryView(_Strict):
    """One admin action (or refused attempt): who, through what, on what, and how it ended."""

    id: str
    at: datetime
    actor: str
    roles: list[str]
    channel: str | None
    action: str
    target: str
    outcome: str = Field(description="ok, failed (the domain refused it) or refused (not allowed)")
    request_id: str | None
    client: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str | None

    @classmethod
    def from_domain(cls, entry: AuditEntry) -> AuditEntryView:
        """The view of an audit entry."""
        return cls(
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            roles=list(entry.roles),
            channel=entry.channel,
            action=entry.action,
            target=entry.target,
            outcome=entry.outcome,
            request_id=entry.request_id,
            client=entry.client,
            before=dict(entry.before) if entry.before is not None else None,
            after=dict(entry.after) if entry.after is not None else None,
            detail=entry.detail,
        )


class AuditPage(_Strict):
    """Audit entries newest first; pass `next_cursor` back for the next page."""

    items: list[AuditEntryView]
    next_cursor: str | None

    @classmethod
    def from_domain(cls, page: Page[AuditEntry]) -> AuditPage:
        """The view of a page of the audit trail."""
        return cls(
            items=[AuditEntryView.from_domain(e) for e in page.items], next_cursor=page.next_cursor
        )


class RunIdView(_Strict):
    """The id of the run an action enqueued."""

    run_id: str


class TriggeredView(_Strict):
    """The run a trigger enqueued, or the existing one for a repeated idempotency key."""

    run_id: str
    duplicate: bool = Field(
        default=False,
        description="True when the idempotency key was seen within the job's window: nothing "
        "was enqueued and run_id is the first run's.",
    )


class RunIdsView(_Strict):
    """The ids of the runs an action enqueued, in order."""

    run_ids: list[str]


class JobPausedView(_Strict):
    """A job's pause flag after the action."""

    name: str
    paused: bool


class QueuePausedView(_Strict):
    """The queue's pause flag after the action."""

    paused: bool


class BulkView(_Strict):
    """What a bulk action did: `done` runs acted on, `skipped` ones that had moved on
    meanwhile, `more` when more matched than its limit (ask again), and the new run ids of a
    retry."""

    action: Literal["cancel", "retry", "delete"]
    done: int
    skipped: int
    more: bool
    new_run_ids: list[str]

    @classmethod
    def from_domain(cls, result: BulkResult) -> BulkView:
        """The view of `result`."""
        return cls(
            action=result.action.value,
            done=result.done,
            skipped=result.skipped,
            more=result.more,
            new_run_ids=list(result.new_run_ids),
        )


class RemovedView(_Strict):
    """How many items the action removed."""

    removed: int


class DeletedView(_Strict):
    """The id of what the action deleted."""

    deleted: str


# --- the shapes as plain JSON, for the CLI's --json ----------------------------------------


def run_json(
    run: Run, stored: StoredResult | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """A run as the API shows it (with its result and progress when given)."""
    return RunView.with_outputs(run, stored, progress).model_dump(mode="json")


def schedule_json(state: ScheduleState) -> dict[str, Any]:
    """A schedule with its runtime state."""
    return ScheduleView.from_domain(state).model_dump(mode="json")


def slot_json(record: SlotRecord) -> dict[str, Any]:
    """One ledger record."""
    return SlotView.from_domain(record).model_dump(mode="json")


def snapshot_json(snapshot: QueueSnapshot, workers: Sequence[WorkerInfo]) -> dict[str, Any]:
    """The queue's snapshot with its live workers."""
    return SnapshotView.from_domain(snapshot, workers).model_dump(mode="json")


def summary_json(summary: JobSummary) -> dict[str, Any]:
    """A job as ``GET /jobs`` lists it."""
    return JobSummaryView(**JobSummaryView.fields_of(summary)).model_dump(mode="json")


def health_json(health: QueueHealth) -> dict[str, Any]:
    """The queue's health as ``GET /queue`` answers it."""
    return QueueHealthView.from_health(health).model_dump(mode="json")


def stats_json(stats: JobStats) -> dict[str, Any]:
    """A job's statistics: windows, hourly trend and last success."""
    return JobStatsView.from_domain(stats).model_dump(mode="json")


# --- workflows ------------------------------------------------------------------------------


class WorkflowStepView(_Strict):
    """One step of a workflow: its job, what it waits for, its state and its current run
    (the latest attempt series: a dead-letter retry replaces it)."""

    name: str
    job: str
    after: list[str]
    state: StepState
    run_id: str | None
    run: RunView | None = Field(default=None, description="Its run (on a single read only).")


class WorkflowView(_Strict):
    """A workflow: its steps and their states; `failure_policy` says what a dead step does."""

    id: str
    name: str
    state: WorkflowState
    failure_policy: FailurePolicy
    created_at: datetime
    failed_at: datetime | None
    cancelled_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = Field(description="Steps per state.")
    steps: list[WorkflowStepView]
    compensation: WorkflowStepView | None

    @classmethod
    def from_domain(cls, workflow: Workflow, runs: Mapping[str, Run] | None = None) -> WorkflowView:
        """The view of `workflow`; with `runs` (a single read), each step's run and its live
        state."""
        view = None if runs is None else AdminWorkflowView(workflow, runs)

        def one(member: WorkflowStep) -> WorkflowStepView:
            run = None if runs is None else runs.get(member.name)
            return WorkflowStepView(
                name=member.name,
                job=member.job,
                after=list(member.after),
                state=member.state if view is None else view.state_of(member),
                run_id=member.run_id,
                run=None if run is None else RunView.from_domain(run),
            )

        steps = [one(m) for m in workflow.steps]
        counts: dict[str, int] = {}
        for item in steps:
            counts[item.state.value] = counts.get(item.state.value, 0) + 1
        return cls(
            id=workflow.id,
            name=workflow.name,
            state=workflow.state,
            failure_policy=workflow.policy,
            created_at=workflow.created_at,
            failed_at=workflow.failed_at,
            cancelled_at=workflow.cancelled_at,
            finished_at=workflow.finished_at,
            counts=counts,
            steps=steps,
            compensation=None if workflow.compensation is None else one(workflow.compensation),
        )

    @classmethod
    def of(cls, view: AdminWorkflowView) -> WorkflowView:
        """The view of one workflow read with its steps' runs (`AdminService.workflow`)."""
        return cls.from_domain(view.workflow, view.runs)


class WorkflowPage(_Strict):
    """Workflows newest first; pass `next_cursor` back for the next page (null: no more)."""

    items: list[WorkflowView]
    next_cursor: str | None
