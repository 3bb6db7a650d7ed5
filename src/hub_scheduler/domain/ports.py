"""Ports: what the domain needs from the outside world, from the domain's point of view.

Adapters (Redis, fakeredis, PostgreSQL, taskiq, logging, webhooks) implement these Protocols
without inheriting from them. A `Backend` is the bundle of ports one store provides; one
contract suite (``tests/contract``) runs over every registered backend. Every method may raise
`BackendUnavailableError` when its store cannot be reached; other errors are listed per method.
A capability only some backends have (`Signals`, `SharedStore`) is a port of its own that a
backend may leave out (``None``); its users fall back (the engines poll, the API's rate
limits count per process).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from hub_scheduler.domain.alerts import Notice
from hub_scheduler.domain.errors import InvalidJobError
from hub_scheduler.domain.histogram import Histogram
from hub_scheduler.domain.limits import JobLimits, OnDuplicate
from hub_scheduler.domain.model import (
    DEFAULT_PAYLOAD_LIMIT,
    ErrorInfo,
    Payload,
    Priority,
    Progress,
    Run,
    RunState,
    RunTrigger,
    StoredResult,
    TraceContext,
    validate_trace_context,
)
from hub_scheduler.domain.retry import GiveUp, RetryDecision, RetryPolicy
from hub_scheduler.domain.schedule import Schedule, SlotDecision, SlotOutcome
from hub_scheduler.domain.workflow import Workflow

T = TypeVar("T")


@attrs.frozen
class Page(Generic[T]):
    """One page of a newest-first listing; pass `next_cursor` back for the next page."""

    items: tuple[T, ...]
    next_cursor: str | None = None


class Clock(Protocol):
    """Where time comes from. Tests use `hub_scheduler.testing.FakeClock`."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock (at once for 0 or less)."""
        ...


@runtime_checkable
class EventClock(Clock, Protocol):
    """A `Clock` that can also wait for an event with a timeout in one await (the real one:
    no task per wait); the engines fall back to racing `sleep` otherwise."""

    async def sleep_until_set(self, seconds: float, event: asyncio.Event) -> None:
        """Return once `seconds` have passed or `event` is set, whichever comes first."""
        ...


# --- queue ------------------------------------------------------------------------------


#: The longest idempotency key accepted (it becomes part of a Redis key).
IDEMPOTENCY_KEY_MAX = 200


def _idempotency_key(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX:
        raise InvalidJobError(
            "idempotency_key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters, got {len(value)}"
        )


@attrs.frozen
class EnqueueRequest:
    """Everything needed to enqueue one run (an over-long idempotency key is refused here)."""

    job: str
    payload: Payload = attrs.field(factory=dict)
    priority: Priority = Priority.NORMAL
    run_at: datetime | None = None
    idempotency_key: str | None = attrs.field(default=None, validator=_idempotency_key)
    idempotency_window: timedelta = timedelta(hours=24)
    trigger: RunTrigger = RunTrigger.MANUAL
    schedule_id: str | None = None
    slot: datetime | None = None
    origin_run_id: str | None = None
    #: For a unique job (`JobDefinition.unique`): `idempotency_key` is its key, held while
    #: the run holding it is unfinished rather than for `idempotency_window`.
    on_duplicate: OnDuplicate | None = None
    #: The enqueuer's W3C trace context, stored with the run (`validate_trace_context`).
    trace_context: TraceContext | None = attrs.field(default=None, converter=validate_trace_context)
    #: A workflow step's run (`Run.workflow_id`, `Run.workflow_step`): the backend records an
    #: event for the workflow in the same step that ends the run (`Workflows.events`).
    workflow_id: str | None = None
    workflow_step: str | None = None


@attrs.frozen
class Enqueued:
    """The answer to an enqueue: the run id, and False in `created` for an idempotent repeat."""

    run_id: str
    created: bool = True


@attrs.frozen
class Claim:
    """A run a worker holds under a lease.

    `token` is a fencing token that grows with every claim of the same run: a worker
    whose lease expired and whose run was claimed again holds a stale token, and its
    acknowledgement is refused.
    """

    run: Run
    token: int
    lease_until: datetime


@attrs.frozen
class Succeeded:
    """The attempt returned normally."""


@attrs.frozen
class Failed:
    """The attempt raised or timed out; `decision` comes from the job's retry policy."""

    error: ErrorInfo
    decision: RetryDecision

    @classmethod
    def stalled(cls, run: Run, policy: RetryPolicy | None, jitter_sample: float) -> Failed:
        """The outcome of a run whose worker stopped renewing its lease more often than
        allowed: a failed attempt, retried per `policy` (given up without one, as for a job
        no process registers any more)."""
        error = ErrorInfo(
            "StalledError", f"its worker stopped renewing the lease {run.stalls} times"
        )
        decision = policy.decide(run.attempt, jitter_sample) if policy else GiveUp(run.attempt)
        return cls(error, decision)


Outcome = Succeeded | Failed


@attrs.frozen
class Exchange:
    """The answer to `JobQueue.exchange`.

    Attributes:
        applied: one flag per settled claim; False where its token was stale (the lease
            had been lost and the run claimed again), so nothing was recorded for it.
        claims: the runs newly claimed.
        next_due: when the earliest delayed run or retry becomes due, if any.
    """

    applied: tuple[bool, ...]
    claims: tuple[Claim, ...]
    next_due: datetime | None


@attrs.frozen
class WorkerInfo:
    """A live worker, as it last reported itself."""

    id: str
    host: str
    pid: int
    concurrency: int
    active: int
    seen_at: datetime


@attrs.frozen
class QueueSnapshot:
    """The queue's health at one instant."""

    depth: Mapping[Priority, int]
    delayed: int
    active: int
    dead: int
    paused: bool
    paused_jobs: frozenset[str]
    parked: int
    oldest_waiting: timedelta | None
    #: Attempts that succeeded, and that failed (retried or dead), over every job since
    #: the store began counting; `gave_up`: those of `failed` that ended their run in the
    #: dead letters.
    succeeded: int = 0
    failed: int = 0
    gave_up: int = 0
    #: Runs active now per worker id (read from the leases, so current; a worker's own
    #: heartbeat reports it only every few seconds).
    active_by_worker: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def waiting(self) -> int:
        """Runs waiting to start: ready at any priority, plus those held by a job's pause."""
        return sum(self.depth.values()) + self.parked


class JobQueue(Protocol):
    """Runs waiting, delayed and in flight, with leases, pause flags and idempotency."""

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Enqueue runs atomically per request, in order; one answer per request.

        A request whose idempotency key was used within its window enqueues nothing and
        answers the first run's id with ``created=False``. One with `on_duplicate` (a
        unique job) does so while the run holding its key is unfinished; with
        `OnDuplicate.REPLACE` a still-waiting holder is cancelled and the request enqueued.
        Raises `PayloadError` for a payload that is not JSON or is too large (nothing of that
        request is stored).
        """
        ...

    async def claim(self, worker: str, limit: int, lease: timedelta) -> list[Claim]:
        """Take up to `limit` ready runs, highest priority first, FIFO within one.

        Nothing is claimed while the queue is paused; runs of a paused job stay queued,
        in order. Each claimed run is active with a lease of `lease` from now.
        """
        ...

    async def exchange(
        self,
        worker: str,
        settled: Sequence[tuple[Claim, Outcome]],
        want: int,
        lease: timedelta,
    ) -> Exchange:
        """A worker's round trip: record finished attempts, then claim up to `want` runs.

        Equivalent to `finish` for each settled claim followed by `claim`, in one atomic
        step, so a busy worker pays one round trip per batch of jobs rather than two per job.
        """
        ...

    async def renew(self, worker: str, claims: Sequence[Claim], lease: timedelta) -> list[str]:
        """Extend the leases `worker` holds; returns the ids of runs it no longer holds."""
        ...

    async def finish(self, claim: Claim, outcome: Outcome) -> Run | None:
        """Record an attempt's outcome: success, a retry after its delay, or a dead letter.

        The attempt is added to the run's `Run.attempts` log (its number, start and worker
        from the claim, its end now, the error and the retry delay chosen); the log keeps
        the latest `MAX_ATTEMPTS_KEPT` and counts the older ones in `Run.attempts_dropped`.
        Returns the run in its new state, or None when the claim's token is stale (the
        lease was lost and the run was claimed again); nothing is changed then.
        """
        ...

    async def hand_back(self, claims: Sequence[Claim], *, interrupted: bool = False) -> None:
        """Return claimed runs to the front of their queue, in the order given (the first
        ends up first in line); claims whose token is stale are left alone.

        Without `interrupted`, the runs never started: no stall is counted, nothing logged.
        With it, they were running when their worker stopped: each counts a stall and logs
        an ``interrupted`` attempt, and another worker may start it at once.
        """
        ...

    async def reap(
        self, max_stalls: int, lease: timedelta, limit: int = 100
    ) -> tuple[list[str], list[Claim]]:
        """Recover runs whose lease expired, counting a stall on each and logging it as a
        ``stalled`` attempt (a held run's entry gets its outcome when it is settled).

        A run stalled at most `max_stalls` times goes back to the front of its queue (its id
        is in the first list). One stalled more often is returned as a claim held by the
        reaper, under a fresh token and lease, so the caller can settle it as a failed
        attempt with the job's retry policy. Delayed runs becoming due are promoted by
        `exchange`, so no separate call is needed for them.
        """
        ...

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run that has not finished.

        A queued, delayed or retry-waiting run is cancelled at once. An active one gets a
        cancel request (`Run.cancel_requested_at`, kept from the first request): its worker
        learns of it through `cancel_requests` and stops the handler, and from then on
        whatever ends the attempt — `settle_cancelled`, a failure (retried or not), a stall,
        a hand-back — ends the run cancelled, never retried; only a success that is
        recorded first ends it succeeded. Returns the run as it is now. Raises
        `RunNotFoundError`, or `IllegalTransitionError` for a finished run.
        """
        ...

    async def set_limits(self, limits: Mapping[str, JobLimits]) -> None:
        """Declare jobs' flow control (`JobDefinition.limits`), as every worker does at start
        for the jobs it runs; the last declaration of a job wins.

        `JobLimits.max_running`: a claim never makes more runs of the job active than that;
        the others are held aside in order and start as active ones end (settled,
        cancelled, stalled or handed back). Runs held for a limit that rose or went away
        start at once. `JobLimits.rate`: a claim starts a run only within the rate (per job,
        or per value of the payload field it is keyed by); one over it is delayed to its own
        next free slot (reserved for it: it starts then without counting twice), attempt
        unchanged.
        """
        ...

    async def cancel_requests(self, claims: Sequence[Claim]) -> list[str]:
        """The ids, among `claims`, of runs still active with a cancel request."""
        ...

    async def settle_cancelled(self, claim: Claim) -> Run | None:
        """End an active run cancelled (its handler stopped for a cancel request), logging
        a ``cancelled`` attempt. Returns the run, or None when the claim's token is stale."""
        ...

    async def pause(self, job: str | None = None) -> None:
        """Pause the whole queue, or one job name: nothing new starts; running runs finish."""
        ...

    async def resume(self, job: str | None = None) -> None:
        """Undo `pause`; paused runs start again in their original order."""
        ...

    async def snapshot(self) -> QueueSnapshot:
        """Depth per priority, delayed, active, dead letters and pause flags."""
        ...

    async def paused_among(self, jobs: Sequence[str]) -> frozenset[str]:
        """Which of `jobs` are paused (one by one, not the whole queue's pause), in one round
        trip whatever their number."""
        ...


@runtime_checkable
class TransactionalEnqueue(Protocol):
    """A queue that can enqueue inside the application's own database transaction, so a run
    exists if and only if that transaction commits (the outbox pattern without an outbox).

    A capability of some backends' queues (PostgreSQL's); `Hub.enqueue` uses it when given a
    ``connection`` and raises `TransactionalEnqueueUnsupportedError` on a queue without it.
    """

    async def enqueue_in(
        self, connection: object, requests: Sequence[EnqueueRequest]
    ) -> list[Enqueued]:
        """`JobQueue.enqueue` on `connection`, the application's open connection to the same
        database (a psycopg ``AsyncConnection`` for PostgreSQL), inside whatever transaction
        it is in. Raises `TypeError` for a connection of another kind, and what
        `JobQueue.enqueue` raises. Idempotency keys are honoured once the transaction commits
        (a concurrent enqueue with the same key waits for it)."""
        ...


@runtime_checkable
class AttemptTraces(Protocol):
    """A queue that keeps the trace context of a run's first attempt, so that the spans of
    its retries link to that attempt's span (OpenTelemetry; see ``runtime/tracing.py``).

    Every backend's queue has it; without it, retries link to the enqueue's context.
    """

    async def keep_first_attempt_trace(self, claim: Claim, context: TraceContext) -> None:
        """Store `context` as the first attempt's of the claimed run (`Run.first_attempt_trace`
        of its later claims). Nothing happens when `claim` is stale (its token is no longer
        the run's) or the run is gone. Raises `BackendUnavailableError`."""
        ...


class DeadLetters(Protocol):
    """Runs that used every attempt, kept with their payload, attempts and last error."""

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Run]:
        """Dead runs, newest first."""
        ...

    async def get(self, run_id: str) -> Run:
        """One dead run. Raises `DeadLetterNotFoundError`."""
        ...

    async def retry(self, run_id: str) -> str:
        """Start a new attempt series linked to the dead run (``origin_run_id``) and remove
        it from the dead letters; returns the new run's id. Raises `DeadLetterNotFoundError`."""
        ...

    async def retry_all(self) -> Sequence[str]:
        """`retry` every dead letter; returns the new run ids, oldest dead letter first."""
        ...

    async def delete(self, run_id: str) -> None:
        """Forget one dead letter. Raises `DeadLetterNotFoundError`."""
        ...

    async def purge(self) -> int:
        """Forget every dead letter; returns how many there were."""
        ...


class RunHistory(Protocol):
    """Every run's latest state, kept for the retention period (90 days by default)."""

    async def get(self, run_id: str) -> Run:
        """One run. Raises `RunNotFoundError` (also once it has been cleaned)."""
        ...

    async def list(
        self,
        *,
        job: str | None = None,
        states: frozenset[RunState] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Run]:
        """Runs newest first (by enqueue time), optionally of one job and some states."""
        ...

    async def clean(self, older_than: datetime, states: frozenset[RunState] | None = None) -> int:
        """Delete finished runs enqueued before `older_than` (only `states`, when given);
        returns how many. Runs still queued, delayed or active are never cleaned, nor are
        dead letters: a dead run leaves the dead-letter queue only when it is retried or
        deleted (`DeadLetters`), and is cleaned like any other finished run after that."""
        ...

    async def latest(self, jobs: Sequence[str]) -> Mapping[str, Run]:
        """The newest run (by enqueue time) of each of `jobs`, in a constant number of round
        trips whatever their number; a job with no run in history is absent."""
        ...


class ResultStore(Protocol):
    """What runs returned, and how far running ones got; both kept for the retention."""

    async def set_result(self, run_id: str, value: Any) -> None:
        """Keep the return value of a run's successful attempt (replacing an earlier one).
        Raises `ResultError` for a value that is not JSON or is over the payload limit
        (nothing is stored then)."""
        ...

    async def result(self, run_id: str) -> StoredResult | None:
        """The value kept for the run; None when none was (or it expired)."""
        ...

    async def set_progress(self, run_id: str, progress: Progress) -> None:
        """Keep the latest progress report of a run (replacing the previous one). Raises
        `ResultError` for a `Progress.meta` that is not JSON or is over the payload limit."""
        ...

    async def progress(self, run_id: str) -> Progress | None:
        """The latest progress report of the run; None when there was none."""
        ...


@attrs.frozen
class WindowStats:
    """Finished attempts of one job in one time window, and how long they took and waited.

    Durations (attempt start to end) and queue waits (from when a run was due to when a
    worker started it) are histograms of 13 buckets per decade (`hub_scheduler.domain.
    histogram`): a percentile reported is within 10 % of a duration that lies there (or
    0.5 ms below 1 ms). A queue wait is counted in the window its run started in.
    """

    succeeded: int = 0
    failed: int = 0
    dead: int = 0
    durations: Histogram = attrs.field(factory=Histogram)
    waits: Histogram = attrs.field(factory=Histogram)

    @property
    def p50(self) -> timedelta | None:
        """The median attempt duration, estimated within 10 % (None: none finished)."""
        return self.durations.percentile(0.5)

    @property
    def p95(self) -> timedelta | None:
        """The 95th percentile of attempt durations, estimated within 10 %."""
        return self.durations.percentile(0.95)

    @property
    def wait_p50(self) -> timedelta | None:
        """The median queue wait of runs started, estimated within 10 % (None: none)."""
        return self.waits.percentile(0.5)

    @property
    def wait_p95(self) -> timedelta | None:
        """The 95th percentile of queue waits, estimated within 10 %."""
        return self.waits.percentile(0.95)

    @property
    def finished(self) -> int:
        """Attempts that ended, however they ended."""
        return self.succeeded + self.failed + self.dead

    @property
    def success_rate(self) -> float | None:
        """Succeeded attempts over all finished ones (None when there were none)."""
        return self.succeeded / self.finished if self.finished else None


@attrs.frozen
class HourStats:
    """One clock hour of a job, for trend charts: its attempts by outcome, and how long the
    attempts that finished in it took (the histogram the hour's window statistics add up)."""

    hour: datetime
    succeeded: int
    failed: int
    dead: int
    durations: Histogram = attrs.field(factory=Histogram)

    @property
    def p50(self) -> timedelta | None:
        """The hour's median attempt duration, within 10 % (None: no attempt finished)."""
        return self.durations.percentile(0.5)

    @property
    def p95(self) -> timedelta | None:
        """The hour's 95th percentile of attempt durations, within 10 % (None: none)."""
        return self.durations.percentile(0.95)


@attrs.frozen
class JobStats:
    """A job's outcome counts and durations over 1 h, 24 h, 7 d and 90 d, and hourly trends.

    Windows are counted in whole clock hours (1 h = this hour and the last; 90 d in days).
    """

    job: str
    windows: Mapping[str, WindowStats]
    hourly: tuple[HourStats, ...]
    last_success: datetime | None
    totals: WindowStats


class Stats(Protocol):
    """Per-job statistics, counted as attempts finish."""

    async def job(
        self,
        job: str,
        now: datetime,
        windows: Sequence[str] = ("1h", "24h", "7d", "90d"),
        *,
        trend_hours: int = 24,
    ) -> JobStats:
        """The statistics of `job` as of `now` (zeros for a job that never ran), for the
        named `windows` only; the hourly trend (its last `trend_hours` clock hours, this one
        included, 1 to 168) comes with all four. Raises `ValueError` for an unknown window
        name or `trend_hours` out of range."""
        ...

    async def jobs(
        self,
        jobs: Sequence[str],
        now: datetime,
        windows: Sequence[str] = ("1h", "24h", "7d", "90d"),
        *,
        trend_hours: int = 24,
    ) -> list[JobStats]:
        """`job` for each of `jobs` (in order), in a constant number of round trips whatever
        their number. Raises `ValueError` as `job` does."""
        ...


# --- schedules --------------------------------------------------------------------------


@attrs.frozen
class ScheduleState:
    """A stored schedule with its runtime state.

    `next_fire` is the next slot not yet decided (None once the schedule is over);
    `version` grows with every change and makes firing a compare-and-advance.
    """

    schedule: Schedule
    next_fire: datetime | None
    paused: bool = False
    declared: bool = False
    last_fire: datetime | None = None
    last_outcome: SlotOutcome | None = None
    runs: int = 0
    version: int = 0


@attrs.frozen
class PlannedFire:
    """One schedule's part of a batched fire (`ScheduleStore.fire_many`): the arguments of
    `ScheduleStore.fire` for it.

    Attributes:
        state: the schedule as read (its version is compared).
        decisions: every due slot with its outcome, oldest first.
        requests: one run per firing decision, in order.
        next_fire: where the schedule goes next (None once it is over).
        bulk_missed: with more than 1, the first decision stands for that many missed slots.
    """

    state: ScheduleState
    decisions: tuple[SlotDecision, ...]
    requests: tuple[EnqueueRequest, ...]
    next_fire: datetime | None
    bulk_missed: int = 0


async def fire_each(
    store: ScheduleStore, fires: Sequence[PlannedFire], now: datetime
) -> list[Sequence[Enqueued] | None]:
    """`ScheduleStore.fire_many` one `ScheduleStore.fire` at a time: the fallback of a
    store without a batched fire."""
    return [
        await store.fire(f.state, f.decisions, f.requests, f.next_fire, now,
                         bulk_missed=f.bulk_missed)
        for f in fires
    ]  # fmt: skip


@attrs.frozen
class SlotRecord:
    """The ledger's answer to "what happened at this slot?"."""

    schedule_id: str
    slot: datetime
    outcome: SlotOutcome
    recorded_at: datetime
    run_id: str | None = None
    #: Slots this record stands for: more than 1 when a long outage's oldest slots were
    #: recorded in bulk (from `slot` on, all missed).
    count: int = 1


@attrs.frozen
class SchedulerInfo:
    """A live scheduler, as it last reported itself."""

    id: str
    seen_at: datetime
    lateness_p50: timedelta | None = None
    lateness_p99: timedelta | None = None


class ScheduleStore(Protocol):
    """Schedules, their next fire instants and the slot ledger."""

    async def sync_declared(self, schedules: Sequence[Schedule], now: datetime) -> None:
        """Upsert the schedules declared in code: definitions come from code, runtime state
        (paused, last fire, runs) is kept; declared schedules no longer in code are removed.
        Schedules created at runtime are left alone."""
        ...

    async def create(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """Store a runtime schedule. Raises `InvalidScheduleError` if its id exists."""
        ...

    async def update(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """Replace a schedule's definition, keeping its runtime state; the next fire is
        recomputed from `now`. Raises `ScheduleNotFoundError`."""
        ...

    async def delete(self, schedule_id: str) -> None:
        """Remove a schedule; its ledger is kept for the retention period.

        Raises `ScheduleNotFoundError`.
        """
        ...

    async def get(self, schedule_id: str) -> ScheduleState:
        """One schedule. Raises `ScheduleNotFoundError`."""
        ...

    async def list(self, job: str | None = None) -> Sequence[ScheduleState]:
        """All schedules (of one job), ordered by id."""
        ...

    async def list_after(self, cursor: str | None = None, limit: int = 100) -> Page[ScheduleState]:
        """Up to `limit` schedules ordered by id, those after the id `cursor` (None: from
        the first), in a constant number of round trips; `next_cursor` (the last id) is set
        when more may follow. A cursor need not be a stored id (one deleted meanwhile reads
        on from where it was). Raises `ValueError` for a `limit` below 1."""
        ...

    async def of_jobs(self, jobs: Sequence[str]) -> Mapping[str, Sequence[ScheduleState]]:
        """The schedules of each of `jobs`, ordered by id (an empty sequence for a job with
        none), in a constant number of round trips whatever their number."""
        ...

    async def set_paused(self, schedule_id: str, *, paused: bool) -> ScheduleState:
        """Pause or resume one schedule. Raises `ScheduleNotFoundError`."""
        ...

    async def due(self, now: datetime, limit: int = 100) -> Sequence[ScheduleState]:
        """Schedules whose next fire is at or before `now`, earliest first."""
        ...

    async def next_due_at(self) -> datetime | None:
        """The earliest next fire over all schedules, or None when none will fire."""
        ...

    async def fire(
        self,
        state: ScheduleState,
        decisions: Sequence[SlotDecision],
        requests: Sequence[EnqueueRequest],
        next_fire: datetime | None,
        now: datetime,
        *,
        bulk_missed: int = 0,
    ) -> Sequence[Enqueued] | None:
        """Atomically: if the stored version still equals ``state.version``, enqueue
        `requests` (one per firing decision, in order), ledger `decisions`, and advance to
        `next_fire`. With `bulk_missed` > 1 the first decision is ledgered as standing for
        that many missed slots. Runs of a job paused meanwhile are not enqueued: their slots
        are ledgered as paused. Returns the enqueue answers, or None when another scheduler
        already advanced the schedule (nothing changed)."""
        ...

    async def fire_many(
        self, fires: Sequence[PlannedFire], now: datetime
    ) -> Sequence[Sequence[Enqueued] | None]:
        """`fire` for many schedules in one round trip: one answer per item, in order (None
        where another scheduler advanced that schedule first). Each item is its own
        compare-and-advance: a refused one leaves the others to fire."""
        ...

    async def claim_due(
        self, now: datetime, limit: int = 100, lease: timedelta = timedelta(seconds=5)
    ) -> Sequence[ScheduleState]:
        """Like `due`, but claimed for `lease`: the schedules returned are not returned
        again to any scheduler until they are fired or the lease ends, so replicas share
        the due set instead of racing for it. A claim is only a hint: firing stays a
        compare-and-advance on the version, so a slot fires once even when two schedulers
        hold it (a lease that ended while its scheduler stalled)."""
        ...

    async def slots(
        self, schedule_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[SlotRecord]:
        """The slot ledger of one schedule, newest slot first."""
        ...


# --- side channels -------------------------------------------------------------------------


class Notifier(Protocol):
    """Tells people about permanent failures."""

    async def run_dead(self, run: Run) -> None:
        """Called after `run` moved to the dead-letter queue. Must not raise and must not
        block for long: adapters that talk to the network do so in the background."""
        ...


@attrs.frozen
class OverdueSchedule:
    """A schedule whose slot passed more than its misfire grace ago without being fired: no
    scheduler is firing it (the dead-man check).

    Attributes:
        schedule_id: the schedule.
        job: its job.
        slot: the slot that should have fired.
        overdue: how long ago that slot was, when it was noticed.
    """

    schedule_id: str
    job: str
    slot: datetime
    overdue: timedelta


@runtime_checkable
class ScheduleAlerts(Protocol):
    """What a notifier may also do: tell people a schedule stopped firing. Optional; a
    notifier without it leaves the scheduler to log the alert."""

    async def schedule_overdue(self, overdue: OverdueSchedule) -> None:
        """Called once when `overdue` is first noticed (not again until it fired and fell
        overdue anew). Must not raise and must not block for long."""
        ...


@runtime_checkable
class AlertChannel(Protocol):
    """Where alert notices go (`hub_scheduler.domain.alerts`): a log, a webhook, apprise's
    email, Slack, Teams, Telegram or SMS. The notifiers that ship have it."""

    async def send(self, notice: Notice) -> None:
        """Deliver `notice` (an alert firing, happening or resolved). Must not raise and
        must not block for long: adapters that talk to the network do so in the
        background."""
        ...


@attrs.frozen
class AuditEntry:
    """One admin action or refused attempt, kept as evidence."""

    id: str
    at: datetime
    actor: str
    roles: tuple[str, ...]
    action: str
    target: str
    outcome: str
    request_id: str | None = None
    client: str | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    detail: str | None = None
    #: The surface it came through: ``api``, ``dashboard``, ``cli``, or an application's own.
    channel: str | None = None


class AuditLog(Protocol):
    """The append-only record of what admins did and tried to do."""

    async def record(self, entry: AuditEntry) -> None:
        """Store one entry."""
        ...

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[AuditEntry]:
        """Entries newest first."""
        ...


# --- presence, signals, shared values ------------------------------------------------------


class Presence(Protocol):
    """Which workers and schedulers are alive, as they last reported themselves."""

    async def worker_seen(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Record that a worker is alive; it counts as live for `ttl` after ``info.seen_at``."""
        ...

    async def worker_stopped(self, worker_id: str) -> None:
        """Forget a worker that stopped (nothing happens for an unknown id)."""
        ...

    async def workers(self, now: datetime) -> Sequence[WorkerInfo]:
        """The workers live at `now`, by id."""
        ...

    async def scheduler_seen(self, info: SchedulerInfo, ttl: timedelta) -> None:
        """Record that a scheduler is alive; it counts as live for `ttl` after ``seen_at``."""
        ...

    async def schedulers(self, now: datetime) -> Sequence[SchedulerInfo]:
        """The schedulers live at `now`, by id."""
        ...


class Signals(Protocol):
    """Wake-ups between processes, so idle engines react at once instead of at their next
    poll. Only an optimisation: a lost signal delays work, it never loses it.

    Each method returns a fresh subscription. It yields False first, once it is subscribed
    (every signal sent after that reaches it), then True for each signal and False after
    each quiet spell of a few seconds (so a reader can check whether to stop); it raises
    `BackendUnavailableError` when the channel is lost (subscribe again to resume).
    """

    def wakeups(self) -> AsyncIterator[bool]:
        """Signals that runs became ready (an enqueue, a resume, a retry coming due)."""
        ...

    def schedule_changes(self) -> AsyncIterator[bool]:
        """Signals that schedules were created, changed, paused or deleted."""
        ...


class SharedStore(Protocol):
    """Small values with an expiry, shared by every process of a deployment (the admin API
    counts its rate limits here). Keys are the caller's; the backend namespaces them."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        """Store `value`, expiring after `ttl` (never when None)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the value (nothing happens when absent)."""
        ...

    async def ttl(self, key: str) -> timedelta | None:
        """Time left before the value expires; None when absent or without expiry."""
        ...

    async def clear(self) -> None:
        """Remove every value of this store."""
        ...

    async def swap(
        self, key: str, expected: bytes | None, value: bytes, ttl: timedelta | None = None
    ) -> bool:
        """Compare-and-set: store `value` (expiring after `ttl`, never when None) only if the
        current value is `expected` (None: absent or expired), atomically across processes;
        returns whether it was stored. Of processes racing from one value, exactly one wins
        (the alert state uses it so that one process sends each alert)."""
        ...


@attrs.frozen
class BackendVitals:
    """The store's own health, as far as the backend can tell (None: not known there).

    Attributes:
        kind: ``redis`` or ``postgresql`` (or a third party's name).
        used_memory: bytes the Redis server uses.
        max_memory: its ``maxmemory`` (None when unlimited).
        eviction_policy: its ``maxmemory-policy``; anything but ``noeviction`` lets Redis
            delete queued runs under memory pressure.
        connected_clients: clients connected to the Redis server.
        ops_per_second: commands per second the server is running.
        evicted_keys: keys the server evicted since it started (any is data lost).
        connections: PostgreSQL connections to the hub's database.
        table_bytes: PostgreSQL sizes of the run tables (with indexes and TOAST), by name.
    """

    kind: str
    used_memory: int | None = None
    max_memory: int | None = None
    eviction_policy: str | None = None
    connected_clients: int | None = None
    ops_per_second: float | None = None
    evicted_keys: int | None = None
    connections: int | None = None
    table_bytes: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def memory_ratio(self) -> float | None:
        """Used memory over maxmemory (None without a limit)."""
        if self.used_memory is None or not self.max_memory:
            return None
        return self.used_memory / self.max_memory

    @property
    def problems(self) -> tuple[str, ...]:
        """What makes the store unsafe for the queue (empty: nothing known)."""
        found = []
        if self.eviction_policy is not None and self.eviction_policy != "noeviction":
            found.append(
                f"Redis maxmemory-policy is {self.eviction_policy}: under memory pressure it "
                "deletes keys, queued runs included; set it to noeviction"
            )
        return tuple(found)


@runtime_checkable
class HasVitals(Protocol):
    """A backend that can report its store's own health (Redis INFO, PostgreSQL's
    statistics)."""

    async def vitals(self) -> BackendVitals | None:
        """The store's vitals; None when the store has none to report (``memory://``, private
        to the process). A figure the store will not tell (``CONFIG`` disabled on a managed
        Redis) is None in the value, not an error. Raises `BackendUnavailableError`."""
        ...


@runtime_checkable
class Migratable(Protocol):
    """A backend whose store has a schema to create and upgrade (PostgreSQL; Redis has none).

    What ``hub-scheduler db migrate`` runs; its backend raises `SchemaVersionError` until then.
    """

    async def migrate(self) -> list[str]:
        """Apply the migrations the store lacks, safely from several processes at once;
        returns their names (empty when it was up to date)."""
        ...


# --- workflows ----------------------------------------------------------------------------


class Workflows(Protocol):
    """Workflow documents (`Workflow`), saved whole under a version, and the events that
    drive them.

    An event is the id of a workflow step's run that ended (or was started again by a
    dead-letter retry), recorded by the queue in the same atomic step, or a workflow's own id
    (recorded by `create`). Whoever applies one acknowledges it after; an event applied
    twice changes nothing the second time (see ``runtime/workflows.py``).
    """

    async def create(self, workflow: Workflow, now: datetime) -> None:
        """Store a new workflow (version 1) and an event for it, atomically."""
        ...

    async def get(self, workflow_id: str) -> tuple[Workflow, int]:
        """The workflow and its version. Raises `WorkflowNotFoundError`."""
        ...

    async def save(self, workflow: Workflow, version: int) -> bool:
        """Replace the workflow if its version is still `version` (it becomes version + 1);
        False, and nothing written, when another save came first."""
        ...

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Workflow]:
        """Workflows, newest first. Raises `InvalidCursorError` for a cursor not handed out."""
        ...

    async def events(self, before: datetime, limit: int = 100) -> Sequence[str]:
        """Up to `limit` events recorded before `before`, oldest first."""
        ...

    async def ack(self, events: Sequence[str]) -> None:
        """Forget events once applied (unknown ones are ignored)."""
        ...


# --- the backend bundle ---------------------------------------------------------------------


@attrs.frozen
class BackendConfig:
    """What a backend is opened with, whatever its kind.

    Attributes:
        clock: where time comes from; leases, delays and retention follow it.
        prefix: the namespace of this hub in the store; hubs with different prefixes share
            a store without meeting.
        retention: how long finished runs, slot records and audit entries are kept.
        payload_limit: the largest encoded payload accepted, in bytes.
    """

    clock: Clock
    prefix: str = "hub"
    retention: timedelta = timedelta(days=90)
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT


class Backend(Protocol):
    """The ports one store provides, opened together and closed together.

    `open_backend(url, config)` (in ``hub_scheduler.adapters.backends``) picks the
    implementation by URL scheme; a third-party package registers its own scheme through the
    ``hub_scheduler.backends`` entry point group.
    """

    @property
    def url(self) -> str:
        """The URL it was opened with, any password masked (safe to print)."""
        ...

    @property
    def config(self) -> BackendConfig:
        """What it was opened with."""
        ...

    @property
    def queue(self) -> JobQueue:
        """Runs waiting, delayed and in flight."""
        ...

    @property
    def dead_letters(self) -> DeadLetters:
        """Runs that used every attempt."""
        ...

    @property
    def history(self) -> RunHistory:
        """Every run, for the retention."""
        ...

    @property
    def schedules(self) -> ScheduleStore:
        """Schedules and their slot ledger."""
        ...

    @property
    def stats(self) -> Stats:
        """Per-job statistics."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The admin audit trail."""
        ...

    @property
    def presence(self) -> Presence:
        """Live workers and schedulers."""
        ...

    @property
    def results(self) -> ResultStore:
        """Return values and progress of runs."""
        ...

    @property
    def workflows(self) -> Workflows:
        """Workflow documents and their events."""
        ...

    @property
    def signals(self) -> Signals | None:
        """Wake-ups between processes; None when the store has none (the engines poll)."""
        ...

    @property
    def shared(self) -> SharedStore | None:
        """Shared expiring values; None when the store has none (callers keep them per
        process)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise `BackendUnavailableError` when it does not."""
        ...

    async def aclose(self) -> None:
        """Release connections. The backend is not used again afterwards."""
        ...


# --- running handlers -----------------------------------------------------------------------


class ClaimFeed(Protocol):
    """What a worker gives the engine that runs handlers (`Executor`)."""

    async def next_claim(self) -> Claim:
        """The next claimed run to start; waits while none is ready."""
        ...

    async def execute(self, claim: Claim) -> Outcome:
        """Run the claim's handler with its timeout; never raises for the handler's errors."""
        ...

    def settle(self, claim: Claim, outcome: Outcome) -> None:
        """Hand a finished attempt's outcome back to the worker, which records it."""
        ...


class Executor(Protocol):
    """Runs handlers of claimed runs, at most `concurrency` at once."""

    async def run(
        self, feed: ClaimFeed, *, concurrency: int, grace: float, stop: asyncio.Event
    ) -> None:
        """Take claims from `feed` and run them until `stop` is set; then take no more and
        return once the running ones finished, cancelling those still running after `grace`
        seconds (the caller bounds its own wait as well)."""
        ...
