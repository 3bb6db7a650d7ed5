"""The error tree: every error hub_scheduler raises derives from `HubSchedulerError`.

Each error carries its facts as attributes and builds its own message, so callers can
react to the fields and people can act on the text.
"""

from __future__ import annotations

from collections.abc import Sequence


class HubSchedulerError(Exception):
    """Root of every error hub_scheduler raises on purpose."""


class ValidationError(HubSchedulerError, ValueError):
    """A value given to hub_scheduler breaks one of its rules."""


class InvalidJobNameError(ValidationError):
    """A job name breaks the naming rule."""

    def __init__(self, name: str, rule: str) -> None:
        self.name = name
        self.rule = rule
        super().__init__(f"invalid job name {name!r}: {rule}")


class InvalidCronError(ValidationError):
    """A cron expression cannot be parsed or can never fire."""

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"invalid cron expression {expression!r}: {reason}")


class UnknownTimezoneError(ValidationError):
    """A time zone name is not in the IANA database."""

    def __init__(self, timezone: str, suggestions: Sequence[str] = ()) -> None:
        self.timezone = timezone
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(
            f"unknown time zone {timezone!r}: use an IANA name such as "
            f"'Australia/Sydney' or 'UTC'{hint}"
        )


class InvalidScheduleError(ValidationError):
    """A schedule's settings contradict each other or are out of range."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid schedule {field}: {reason}")


class InvalidRetryPolicyError(ValidationError):
    """A retry policy setting is out of range."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid retry policy {field}: {reason}")


class InvalidJobError(ValidationError):
    """A job definition setting is out of range."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid job {field}: {reason}")


class InvalidCursorError(ValidationError):
    """A pagination cursor was not one this store handed out."""

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor
        super().__init__(f"invalid cursor {cursor!r}: pass back the next_cursor of a previous page")


class InvalidPageLimitError(ValidationError):
    """A page was asked for with a size outside what a listing serves."""

    def __init__(self, limit: int, most: int) -> None:
        self.limit = limit
        self.most = most
        super().__init__(f"invalid limit {limit}: ask for 1 to {most} items per page")


class IllegalTransitionError(HubSchedulerError):
    """A run was asked to move to a state its lifecycle does not allow from where it is."""

    def __init__(self, run_id: str, current: str, target: str) -> None:
        self.run_id = run_id
        self.current = current
        self.target = target
        super().__init__(f"run {run_id} cannot go from {current!r} to {target!r}")


class RunCancelledError(HubSchedulerError):
    """Raised in a handler by `JobContext.check_cancelled` once its run was cancelled while it
    ran; a handler may also raise it itself. The worker ends the run cancelled (no retry)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} was cancelled while it ran")


class ConflictError(HubSchedulerError):
    """The request is well formed but conflicts with what exists (HTTP 409)."""


class ResultNotReadyError(ConflictError):
    """A run's result was asked for before the run succeeded."""

    def __init__(self, run_id: str, state: str) -> None:
        self.run_id = run_id
        self.state = state
        super().__init__(f"run {run_id} has no result: it is {state}, not succeeded")


class ScheduleExistsError(InvalidScheduleError, ConflictError):
    """A schedule was created with an id already taken (or declared in code)."""

    def __init__(self, schedule_id: str, *, declared: bool = False) -> None:
        self.schedule_id = schedule_id
        self.declared = declared
        where = " by a schedule declared in code" if declared else ""
        super().__init__("id", f"a schedule with id {schedule_id!r} already exists{where}")


class DeclaredScheduleError(ConflictError):
    """An edit or delete of a schedule declared in code: code owns its definition."""

    def __init__(self, schedule_id: str, job: str, action: str) -> None:
        self.schedule_id = schedule_id
        self.job = job
        self.action = action
        super().__init__(
            f"schedule {schedule_id!r} is declared in code on job {job!r}, so it cannot be "
            f"{action} here (the next scheduler start would undo it): change it in the code; "
            "it can be paused and resumed"
        )


class NotFoundError(HubSchedulerError, LookupError):
    """Something asked for by its identifier does not exist."""

    kind = "item"

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier
        super().__init__(f"{self.kind} {identifier!r} not found")


class JobNotFoundError(NotFoundError):
    """No job is registered under this name."""

    kind = "job"


class RunNotFoundError(NotFoundError):
    """No run has this id (or its history has been cleaned)."""

    kind = "run"


class ScheduleNotFoundError(NotFoundError):
    """No schedule has this id."""

    kind = "schedule"


class DeadLetterNotFoundError(NotFoundError):
    """No dead letter has this id."""

    kind = "dead letter"


class WorkflowNotFoundError(NotFoundError):
    """No workflow has this id (or its record has been cleaned)."""

    kind = "workflow"


class DuplicateJobError(HubSchedulerError):
    """A second job was registered under a name already taken."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a job named {name!r} is already registered")


class PayloadError(ValidationError):
    """A job payload cannot be stored: not JSON-encodable, or over the size limit."""

    def __init__(self, job: str, reason: str) -> None:
        self.job = job
        self.reason = reason
        super().__init__(f"payload of job {job!r} rejected: {reason}")


class ResultError(ValidationError):
    """A run's return value cannot be kept: not JSON-encodable, or over the size limit."""

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"result of run {run_id} not kept: {reason}")


class UnknownBackendError(ValidationError):
    """A backend URL whose scheme no backend is registered for (or that is no URL)."""

    def __init__(self, scheme: str, known: Sequence[str]) -> None:
        self.scheme = scheme
        self.known = tuple(known)
        what = f"unknown backend scheme {scheme!r}" if scheme else "a backend URL needs a scheme"
        super().__init__(f"{what}; known: {', '.join(f'{k}://' for k in self.known)}")


class InvalidBackendUrlError(ValidationError):
    """A backend URL of a known scheme that cannot be used. The message says why and never
    repeats the URL (it may hold a password)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid backend URL: {reason}")


class BackendUnavailableError(HubSchedulerError):
    """The store could not be reached; the operation may be retried."""

    def __init__(self, operation: str, cause: str) -> None:
        self.operation = operation
        self.cause = cause
        super().__init__(f"{operation} failed: store unavailable ({cause})")


#: The command that brings a store's schema up to date.
MIGRATE_COMMAND = "hub-scheduler db migrate"


class SchemaVersionError(HubSchedulerError):
    """The store's schema is older than this hub_scheduler needs (or was never created):
    migrate it before opening the backend."""

    def __init__(self, store: str, current: int, required: int) -> None:
        self.store = store
        self.current = current
        self.required = required
        self.command = MIGRATE_COMMAND
        state = "has no hub_scheduler tables" if current == 0 else f"is at version {current}"
        super().__init__(
            f"{store} {state}; this hub_scheduler needs version {required}: "
            f"run `{MIGRATE_COMMAND}` with the same URL and prefix first"
        )


class NewerLayoutError(HubSchedulerError):
    """The store's data was written by a newer hub_scheduler, in a layout this one does not
    know: it refuses to touch it rather than write it the old way."""

    def __init__(self, store: str, found: int, known: int) -> None:
        self.store = store
        self.found = found
        self.known = known
        super().__init__(
            f"{store} is at data layout {found}, written by a newer hub_scheduler; this one "
            f"knows layout {known}: upgrade hub_scheduler"
        )


class TransactionalEnqueueUnsupportedError(HubSchedulerError):
    """An enqueue was asked to join the application's transaction on a backend that cannot."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        super().__init__(
            f"the backend {backend} cannot enqueue inside your database transaction "
            "(connection=...); use a postgresql:// backend, or enqueue after your commit"
        )
