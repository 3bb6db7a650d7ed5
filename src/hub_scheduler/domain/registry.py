"""The jobs an application registered: definitions and their handlers."""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from hub_scheduler.domain.errors import DuplicateJobError, JobNotFoundError, RunCancelledError
from hub_scheduler.domain.model import JobDefinition, Payload, Priority, Run
from hub_scheduler.domain.ports import EnqueueRequest
from hub_scheduler.domain.retry import RetryPolicy
from hub_scheduler.domain.workflow import StepState, Upstream


@attrs.frozen
class JobContext:
    """What a handler gets: which run this is, its payload, and a logger.

    Attributes:
        run: the run being executed (id, attempt, trigger, schedule slot...).
        token: the fencing token of this claim; it grows with every claim of the run, so
            an external system can refuse writes carrying an older token.
        logger: a logger named ``hub_scheduler.jobs.<job>``.
        reporter: where `progress` reports go (the worker's; None: they go nowhere).
        cancelled: set once the run was cancelled while this attempt runs (``hub.cancel``,
            the API, the CLI or the dashboard). A handler that can stop early waits on it or
            calls `check_cancelled` between steps; one that does not is cut off (its task
            cancelled) after the worker's ``cancel_grace``. A synchronous handler (run in a
            thread) reads `cancel_requested` instead; its thread cannot be cut off.
    """

    run: Run
    token: int
    logger: logging.Logger
    reporter: Callable[[float | None, str], Awaitable[None]] | None = None
    cancelled: asyncio.Event = attrs.field(factory=asyncio.Event)
    #: Reads what this workflow step waited for (the worker's; None outside workflows).
    upstream_reader: Callable[[], Awaitable[Mapping[str, Upstream]]] | None = None

    @property
    def cancel_requested(self) -> bool:
        """True once the run was cancelled while this attempt runs (see `cancelled`)."""
        return self.cancelled.is_set()

    async def check_cancelled(self) -> None:
        """Raise `RunCancelledError` if the run was cancelled meanwhile; the worker then ends
        it cancelled. Call it between steps of a long handler."""
        if self.cancelled.is_set():
            raise RunCancelledError(self.run.id)

    async def progress(self, fraction: float | None = None, message: str = "") -> None:
        """Report how far this attempt got: `fraction` done (0.0 to 1.0, None: unknown) and
        a short `message`; the API and dashboard show the latest report while it runs.

        Raises `InvalidJobError` for a fraction outside 0-1. A report the store cannot take
        is logged, not raised: progress never fails a job.
        """
        if self.reporter is not None:
            await self.reporter(fraction, message)

    @property
    def workflow_id(self) -> str | None:
        """The workflow this run is a step of (`Hub.start_workflow`), or None."""
        return self.run.workflow_id

    @property
    def step(self) -> str | None:
        """This run's step name in its workflow, or None."""
        return self.run.workflow_step

    async def inputs(self) -> dict[str, Upstream]:
        """For a workflow step: each step it waited for, by name, with how it ended and the
        value its handler returned (`Upstream`). Empty outside workflows and for a first
        step."""
        if self.upstream_reader is None:
            return {}
        return dict(await self.upstream_reader())

    async def upstream(self) -> dict[str, Any]:
        """For a workflow step: the values returned by the steps it waited for that
        succeeded, by step name (a chain's step reads its one predecessor's result here;
        a group's callback, every member's). See `inputs` for failed ones."""
        return {
            name: i.value for name, i in (await self.inputs()).items()
            if i.state is StepState.SUCCEEDED
        }  # fmt: skip

    @property
    def run_id(self) -> str:
        """The run's id: stable across its attempts, so use it as an idempotency key."""
        return self.run.id

    @property
    def attempt(self) -> int:
        """1 for the first try, 2 for the first retry, ..."""
        return self.run.attempt

    @property
    def payload(self) -> Payload:
        """The run's payload (a JSON object)."""
        return self.run.payload

    @property
    def slot(self) -> datetime | None:
        """For a scheduled run, the schedule slot it fires for."""
        return self.run.slot


Handler = Callable[[JobContext], Awaitable[Any]] | Callable[[JobContext], Any]


@attrs.frozen
class Job:
    """One enqueue of a `Hub.enqueue_many` call."""

    name: str
    payload: Payload = attrs.field(factory=dict)
    priority: Priority | int | str | None = None
    delay: timedelta | None = None
    idempotency_key: str | None = None


@attrs.frozen
class RegisteredJob:
    """A job definition and the function that runs it."""

    definition: JobDefinition
    handler: Handler


@attrs.define
class Registry:
    """Jobs by name. Registering a name twice raises `DuplicateJobError`."""

    _jobs: dict[str, RegisteredJob] = attrs.field(factory=dict)
    # The names in sorted order, for `names_after` (None until asked after a change).
    _sorted: list[str] | None = attrs.field(default=None, init=False, repr=False, eq=False)

    def add(self, definition: JobDefinition, handler: Handler) -> RegisteredJob:
        """Register `handler` for `definition`."""
        if definition.name in self._jobs:
            raise DuplicateJobError(definition.name)
        job = RegisteredJob(definition, handler)
        self._jobs[definition.name] = job
        self._sorted = None
        return job

    def names_after(self, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` registered names in sorted order (by code point), those after
        `after` (None: from the first; it need not be registered), and whether more follow."""
        if self._sorted is None:
            self._sorted = sorted(self._jobs)
        start = 0 if after is None else bisect.bisect_right(self._sorted, after)
        names = self._sorted[start : start + limit]
        return names, start + limit < len(self._sorted)

    def previous_page(self, after: str | None, limit: int) -> tuple[bool, str | None]:
        """For the page of `names_after(after, limit)`: whether a page comes before it, and
        the `after` that reads that page (None: the first)."""
        if self._sorted is None:
            self._sorted = sorted(self._jobs)
        start = 0 if after is None else bisect.bisect_right(self._sorted, after)
        if start == 0:
            return False, None
        back = start - limit
        return True, self._sorted[back - 1] if back > 0 else None

    def get(self, name: str) -> RegisteredJob:
        """The job called `name`, or `JobNotFoundError`."""
        try:
            return self._jobs[name]
        except KeyError:
            raise JobNotFoundError(name) from None

    def retry_policy(self, name: str) -> RetryPolicy | None:
        """The retry policy of job `name`; None when no such job is registered here."""
        job = self._jobs.get(name)
        return job.definition.retry if job else None

    def priority(self, name: str) -> Priority:
        """The priority of job `name`; Normal when no such job is registered here."""
        job = self._jobs.get(name)
        return job.definition.priority if job else Priority.NORMAL

    def request(self, job: Job, now: datetime) -> EnqueueRequest:
        """What enqueueing `job` at `now` asks of the queue: the job's own priority and
        idempotency window unless the call overrides them; for a unique job without an
        idempotency key of its own, its unique key. Raises `JobNotFoundError`."""
        definition = self.get(job.name).definition
        unique = definition.unique if job.idempotency_key is None else None
        return EnqueueRequest(
            job=definition.name,
            payload=job.payload,
            priority=Priority.parse(job.priority)
            if job.priority is not None
            else definition.priority,
            run_at=now + job.delay if job.delay else None,
            idempotency_key=unique.key(definition.name, job.payload)
            if unique
            else job.idempotency_key,
            idempotency_window=definition.idempotency_window,
            on_duplicate=unique.on_duplicate if unique else None,
        )

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[RegisteredJob]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)
