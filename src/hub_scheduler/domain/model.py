"""Jobs, priorities and the lifecycle of a run."""

from __future__ import annotations

import enum
import json
import re
import secrets
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs

from hub_scheduler.domain.errors import (
    InvalidJobError,
    InvalidJobNameError,
    PayloadError,
    ResultError,
)
from hub_scheduler.domain.limits import JobLimits, RateLimit, Uniqueness
from hub_scheduler.domain.retry import RetryPolicy
from hub_scheduler.domain.schedule import Schedule, ScheduleTrigger

#: A job's arguments: a JSON object. Values must survive a JSON round trip.
Payload = Mapping[str, Any]

#: The largest encoded payload stores accept by default, in bytes.
DEFAULT_PAYLOAD_LIMIT = 512 * 1024

JOB_NAME_MAX = 100
_JOB_NAME_CHARS = re.compile(r"[A-Za-z0-9_.:\-]")
#: Words the admin API serves under ``/jobs/`` itself: a job of that name could not be read.
RESERVED_JOB_NAMES = frozenset({"dlq", "history", "metrics"})


class Priority(enum.IntEnum):
    """How urgent a job is. A lower number runs first; FIFO within one priority."""

    CRITICAL = 1
    HIGH = 5
    NORMAL = 10
    LOW = 15

    @classmethod
    def parse(cls, value: int | str | Priority) -> Priority:
        """A priority from its number (1, 5, 10, 15) or name ("high", case-insensitive)."""
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        else:
            try:
                return cls(int(value))
            except ValueError:
                pass
        allowed = ", ".join(f"{p.name.lower()} ({p.value})" for p in cls)
        raise InvalidJobError("priority", f"{value!r} is not one of {allowed}")


def new_run_id() -> str:
    """A fresh run id: 16 hex digits (64 random bits)."""
    return secrets.token_hex(8)


def encode_payload(job: str, payload: Payload, limit: int = DEFAULT_PAYLOAD_LIMIT) -> str:
    """The payload as compact JSON, or `PayloadError` saying why it cannot be stored.

    A payload is a JSON object (no NaN or infinities) of at most `limit` bytes encoded.
    """
    if not isinstance(payload, Mapping):
        raise PayloadError(job, f"it must be a JSON object (a dict), not {type(payload).__name__}")
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(job, f"it is not JSON-encodable ({exc})") from None
    size = len(text.encode())
    if size > limit:
        raise PayloadError(job, f"it is {size} bytes encoded; the limit is {limit}")
    return text


#: A run's W3C Trace Context (``traceparent`` and, optionally, ``tracestate``), as an
#: OpenTelemetry propagator injects it: what lets a worker continue the enqueuer's trace.
TraceContext = Mapping[str, str]

#: The only trace context fields stored, and the longest value kept of each (a version-00
#: ``traceparent`` has 55 characters; W3C caps ``tracestate`` at 512).
TRACE_CONTEXT_LIMITS: Mapping[str, int] = {"traceparent": 128, "tracestate": 512}
#: A W3C traceparent: version 00's four fields (later versions may append more).
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[ -~]*)?")


def _trace_context_problem(value: object) -> str | None:
    if not isinstance(value, Mapping):
        return f"it must be a mapping of strings, not {type(value).__name__}"
    if "traceparent" not in value:
        return "it needs a traceparent"
    problems = (_field_problem(key, text) for key, text in value.items())
    problem = next((p for p in problems if p is not None), None)
    if problem is None and not _TRACEPARENT.fullmatch(value["traceparent"]):
        return "traceparent is not version-traceid-parentid-flags in lowercase hex"
    return problem


def _field_problem(key: object, text: object) -> str | None:
    limit = TRACE_CONTEXT_LIMITS.get(str(key))
    if limit is None:
        return f"{key!r} is not one of {', '.join(TRACE_CONTEXT_LIMITS)}"
    if not isinstance(text, str) or not text.isascii() or not text.isprintable():
        return f"{key} must be printable ASCII text"
    if not 0 < len(text) <= limit:
        return f"{key} must be 1 to {limit} characters, got {len(text)}"
    return None


def validate_trace_context(value: TraceContext | None) -> dict[str, str] | None:
    """`value` as a plain dict if it is a storable trace context (None stays None), else
    `InvalidJobError`: only ``traceparent`` (required) and ``tracestate``, printable ASCII,
    at most `TRACE_CONTEXT_LIMITS` characters each."""
    if value is None:
        return None
    problem = _trace_context_problem(value)
    if problem is not None:
        raise InvalidJobError("trace_context", problem)
    return dict(value)


def stored_trace_context(value: object) -> dict[str, str] | None:
    """A trace context read back from a store, or None when there is none or it is not
    one `validate_trace_context` accepts: a run is never unreadable for its trace."""
    if not isinstance(value, Mapping) or _trace_context_problem(value) is not None:
        return None
    return {str(key): str(text) for key, text in value.items()}


def iso_z(instant: datetime) -> str:
    """An instant as hub_scheduler writes every timestamp it shows: ISO 8601 UTC with ``Z``."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def validate_job_name(name: str) -> str:
    """Return `name` if it is a valid job name, else raise `InvalidJobNameError`.

    A job name is 1-100 characters, starts with a letter and continues with letters,
    digits, ``_``, ``-``, ``.`` or ``:`` (it appears in URLs, metrics and Redis keys).
    """
    if not name:
        raise InvalidJobNameError(name, "it must not be empty")
    if len(name) > JOB_NAME_MAX:
        raise InvalidJobNameError(
            name, f"it is {len(name)} characters; the limit is {JOB_NAME_MAX}"
        )
    if name in RESERVED_JOB_NAMES:
        raise InvalidJobNameError(name, "it is reserved (the admin API serves /jobs/" + name + ")")
    if not name[0].isascii() or not name[0].isalpha():
        raise InvalidJobNameError(name, f"it must start with a letter, not {name[0]!r}")
    for char in name:
        if not _JOB_NAME_CHARS.fullmatch(char):
            raise InvalidJobNameError(
                name, f"{char!r} is not allowed; use letters, digits, '_', '-', '.' or ':'"
            )
    return name


def _job_name(_: object, __: attrs.Attribute[str], value: str) -> None:
    validate_job_name(value)


def _positive_timeout(_: object, __: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not timedelta(0) < value <= timedelta(days=1):
        raise InvalidJobError("timeout", f"must be more than 0 s and at most 1 day, got {value}")


def _priority(value: int | str | Priority) -> Priority:
    return Priority.parse(value)


def _rate_limit(value: RateLimit | str | None) -> RateLimit | None:
    return RateLimit.parse(value) if isinstance(value, str) else value


def _to_schedule(value: Schedule | ScheduleTrigger) -> Schedule:
    return value if isinstance(value, Schedule) else Schedule(trigger=value)


def _to_schedules(values: Iterable[Schedule | ScheduleTrigger]) -> tuple[Schedule, ...]:
    return tuple(_to_schedule(v) for v in values)


@attrs.frozen
class JobDefinition:
    """A job registered in code.

    Attributes:
        name: unique name; see `validate_job_name`.
        description: one line for people (shown in the admin API and dashboard).
        priority: default priority of its runs.
        retry: what happens after a failed attempt.
        timeout: an attempt running longer than this fails (and is retried per `retry`).
        schedules: when it runs by itself; triggers (``Cron(...)``) or full `Schedule`
            values. Each is bound to this job, with id ``"<name>:<index>"`` unless it has one.
        idempotency_window: how long an idempotency key given on enqueue is remembered:
            a second enqueue with the same key inside the window returns the first run's id.
        max_running: the most runs of this job active at once across every worker (None: no
            limit). Others wait in order, held aside by the store (no polling), and start as
            running ones end; a dead worker's run stops counting when its lease runs out.
        rate_limit: the most starts per period across every worker (`RateLimit`, or text
            such as ``"10/min"``); runs over it are delayed to their own next free slot, not
            failed. Key it by a payload field with ``RateLimit.parse("10/min", key="tenant")``
            (``hub.job(rate_key=...)``) for one limit per tenant.
        unique: at most one unfinished run of the job (per values of some payload fields)
            at a time; an enqueue meanwhile keeps it or replaces it (`Uniqueness`).
        limits: max_running and rate_limit, as the worker declares them to the store.
    """

    name: str = attrs.field(validator=_job_name)
    description: str = ""
    priority: Priority = attrs.field(default=Priority.NORMAL, converter=_priority)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    timeout: timedelta = attrs.field(default=timedelta(seconds=30), validator=_positive_timeout)
    schedules: tuple[Schedule, ...] = attrs.field(default=(), converter=_to_schedules)
    idempotency_window: timedelta = timedelta(hours=24)
    max_running: int | None = None
    rate_limit: RateLimit | None = attrs.field(default=None, converter=_rate_limit)
    unique: Uniqueness | None = None
    limits: JobLimits = attrs.field(init=False, factory=JobLimits)

    def __attrs_post_init__(self) -> None:
        if self.idempotency_window <= timedelta(0):
            raise InvalidJobError("idempotency_window", "must be positive")
        # The limits check themselves (max_running's range, the rate's parts).
        object.__setattr__(self, "limits", JobLimits(self.max_running, self.rate_limit))
        bound = tuple(s.bind(self.name, f"{self.name}:{i}") for i, s in enumerate(self.schedules))
        ids = [s.id for s in bound]
        if len(set(ids)) != len(ids):
            raise InvalidJobError("schedules", f"schedule ids must be unique, got {ids}")
        # Binding fills in derived fields of a frozen value once, at construction.
        object.__setattr__(self, "schedules", bound)


class RunState(enum.StrEnum):
    """Where a run is in its lifecycle."""

    QUEUED = "queued"
    """Waiting for a worker."""
    DELAYED = "delayed"
    """Waiting for its start time (enqueued with a delay or by a schedule ahead of time)."""
    ACTIVE = "active"
    """Claimed by a worker and running."""
    SUCCEEDED = "succeeded"
    RETRY_SCHEDULED = "retry_scheduled"
    """An attempt failed; the next one waits for its backoff delay."""
    DEAD = "dead"
    """Every attempt failed; the run is in the dead-letter queue."""
    CANCELLED = "cancelled"


#: States after which nothing more happens to a run (the only ones history cleaning removes).
FINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.DEAD, RunState.CANCELLED})
#: Final states rare among the runs in history: every backend indexes them apart, so a
#: listing of one of them finds its few runs among millions without scanning the others.
RARE_FINAL_STATES = frozenset({RunState.DEAD, RunState.CANCELLED})


class RunTrigger(enum.StrEnum):
    """What caused a run."""

    MANUAL = "manual"
    """Enqueued by application code or an admin ("run now")."""
    SCHEDULE = "schedule"
    """Fired by a schedule slot."""
    DEAD_LETTER_RETRY = "dead_letter_retry"
    """A new attempt series started from a dead letter."""
    WORKFLOW = "workflow"
    """A step of a workflow, started when the steps it waits for ended."""


@attrs.frozen
class ErrorInfo:
    """Why an attempt failed, safe to store and show (no locals, no secrets)."""

    type: str
    message: str
    traceback: str = ""

    #: Frames kept from the end of a traceback; the innermost ones say what went wrong.
    TRACEBACK_FRAMES: ClassVar[int] = 8
    #: The most traceback text kept per attempt, in characters (the end is kept).
    TRACEBACK_LIMIT: ClassVar[int] = 4096
    MESSAGE_LIMIT: ClassVar[int] = 2000

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Summarise an exception: its qualified type, message, and its traceback as Python
        prints it (the last `TRACEBACK_FRAMES` frames of each exception in a chain), cut
        to its last `TRACEBACK_LIMIT` characters."""
        kind = type(exc)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else (f"{kind.__module__}.{kind.__qualname__}")
        )
        text = "".join(traceback.format_exception(exc, limit=-cls.TRACEBACK_FRAMES))
        return cls(type=name, message=str(exc)[: cls.MESSAGE_LIMIT], traceback=cut_traceback(text))


def cut_traceback(text: str, limit: int = ErrorInfo.TRACEBACK_LIMIT) -> str:
    """`text` if at most `limit` characters, else its end with a first line saying so."""
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} earlier characters cut]\n" + text[-limit:]


class AttemptOutcome(enum.StrEnum):
    """How one attempt (one execution of a run's handler) ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """It raised or timed out; the next attempt waits `Attempt.retry_delay`."""
    GAVE_UP = "gave_up"
    """It failed with no attempt left: the run went to the dead-letter queue."""
    STALLED = "stalled"
    """Its worker stopped renewing the lease (it died or hung); the run was queued again."""
    INTERRUPTED = "interrupted"
    """Its worker stopped before it finished (the stop grace ran out); the run was handed
    back to the front of its queue."""
    CANCELLED = "cancelled"
    """The run was cancelled while this attempt ran: the handler stopped (on its own, seeing
    the request, or cut off after the worker's cancel grace) or failed meanwhile; the run
    ended cancelled and is never retried."""


#: The most attempts a run keeps; older ones are dropped (and counted in
#: `Run.attempts_dropped`).
MAX_ATTEMPTS_KEPT = 10


@attrs.frozen
class Attempt:
    """One execution of a run's handler, as the store recorded it when it ended.

    Attributes:
        number: the run's attempt number it ran as (a stalled or interrupted execution is
            run again under the same number).
        started_at: when the worker claimed it.
        finished_at: when it ended (for a stall: when the reaper noticed).
        worker: the worker that ran it.
        outcome: how it ended.
        error: why it failed (its traceback cut to `ErrorInfo.TRACEBACK_LIMIT`), if it did.
        retry_delay: for a failure that is retried, the backoff chosen before the next one.
    """

    number: int
    started_at: datetime
    finished_at: datetime
    worker: str | None
    outcome: AttemptOutcome
    error: ErrorInfo | None = None
    retry_delay: timedelta | None = None

    @property
    def duration(self) -> timedelta:
        """How long it ran."""
        return self.finished_at - self.started_at

    @property
    def retry_at(self) -> datetime | None:
        """When the next attempt was due to start, for a retried failure."""
        return None if self.retry_delay is None else self.finished_at + self.retry_delay


@attrs.frozen
class Run:
    """One requested execution of a job, through all its attempts, as a store reports it.

    The lifecycle (queued or delayed, active, then succeeded, waiting for a retry, dead or
    cancelled) is carried out atomically by the backend; a move it does not allow raises
    `IllegalTransitionError` there.
    """

    id: str
    job: str
    state: RunState
    enqueued_at: datetime
    payload: Payload = attrs.field(factory=dict)
    priority: Priority = Priority.NORMAL
    trigger: RunTrigger = RunTrigger.MANUAL
    attempt: int = 1
    run_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    error: ErrorInfo | None = None
    stalls: int = 0
    schedule_id: str | None = None
    slot: datetime | None = None
    idempotency_key: str | None = None
    origin_run_id: str | None = None
    #: The latest `MAX_ATTEMPTS_KEPT` attempts, oldest first (runs stored before attempts
    #: were kept have none).
    attempts: tuple[Attempt, ...] = ()
    #: Older attempts no longer kept.
    attempts_dropped: int = 0
    #: When cancelling it was asked while it ran (`JobQueue.cancel` of an active run); its
    #: handler is told, and the run ends cancelled however the attempt ends, unless it
    #: succeeds first.
    cancel_requested_at: datetime | None = None
    #: The W3C trace context stored at enqueue (`TraceContext`; None: not traced, or
    #: stored before trace contexts were).
    trace_context: TraceContext | None = None
    #: The trace context of its first attempt's span, once that attempt failed and a retry
    #: follows (its later attempts link to it); None otherwise.
    first_attempt_trace: TraceContext | None = None
    #: The workflow this run is a step of (`Workflow.id`) and the step's name, or None.
    workflow_id: str | None = None
    workflow_step: str | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long the last attempt ran, once it has finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


# --- results and progress ---------------------------------------------------------------

#: The longest progress message kept, in characters (the end is cut).
PROGRESS_MESSAGE_LIMIT = 500


def encode_result(run_id: str, value: Any, limit: int = DEFAULT_PAYLOAD_LIMIT) -> str:
    """A run's return value as compact JSON, or `ResultError` saying why it cannot be kept.

    Any JSON value (no NaN or infinities) of at most `limit` bytes encoded — the payload
    limit bounds results too.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ResultError(run_id, f"it is not JSON-encodable ({exc})") from None
    size = len(text.encode())
    if size > limit:
        raise ResultError(run_id, f"it is {size} bytes encoded; the limit is {limit}")
    return text


@attrs.frozen
class StoredResult:
    """What a run's successful attempt returned (a JSON value), and when it was stored."""

    value: Any
    stored_at: datetime


def _fraction(_: object, __: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InvalidJobError("progress", f"the fraction must be between 0 and 1, got {value}")


def _message(value: str) -> str:
    return str(value)[:PROGRESS_MESSAGE_LIMIT]


@attrs.frozen
class Progress:
    """How far a running attempt says it got.

    Attributes:
        at: when it said so.
        fraction: done so far, 0.0 to 1.0 (None: unknown).
        message: a short line for people (cut to `PROGRESS_MESSAGE_LIMIT` characters).
        state: taskiq's progress state (``STARTED``, ``RETRY``...) for taskiq tasks.
        meta: taskiq's progress meta (any JSON value) for taskiq tasks.
    """

    at: datetime
    fraction: float | None = attrs.field(default=None, validator=_fraction)
    message: str = attrs.field(default="", converter=_message)
    state: str = "STARTED"
    meta: Any = None
