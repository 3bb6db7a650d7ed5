"""`Hub`: the one object an application uses — register jobs, enqueue, run workers.

It is also the composition root of the Python API: it opens the backend for a URL (through
`open_backend`, so no driver is named here), and picks the clock, the notifier and the
engine that runs handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs

from hub_scheduler.adapters.backends import open_backend
from hub_scheduler.adapters.clock import SystemClock
from hub_scheduler.adapters.notifiers import LoggingNotifier
from hub_scheduler.domain.admin import AdminService
from hub_scheduler.domain.alerts import AlertPolicy
from hub_scheduler.domain.depth import DepthHistory
from hub_scheduler.domain.errors import (
    InvalidJobError,
    ResultNotReadyError,
    TransactionalEnqueueUnsupportedError,
)
from hub_scheduler.domain.limits import RateLimit, Uniqueness
from hub_scheduler.domain.model import (
    DEFAULT_PAYLOAD_LIMIT,
    JobDefinition,
    Priority,
    Progress,
    Run,
    RunState,
    encode_payload,
)
from hub_scheduler.domain.ports import (
    AlertChannel,
    AuditLog,
    Backend,
    BackendConfig,
    Clock,
    DeadLetters,
    Enqueued,
    EnqueueRequest,
    Executor,
    JobQueue,
    Notifier,
    Presence,
    RunHistory,
    ScheduleStore,
    Stats,
    TransactionalEnqueue,
)
from hub_scheduler.domain.registry import Handler, Job, Registry
from hub_scheduler.domain.retry import RetryPolicy
from hub_scheduler.domain.schedule import Schedule, ScheduleTrigger
from hub_scheduler.domain.urls import MEMORY_URL, REDIS_URL_ENV, URL_ENV, url_from_environment
from hub_scheduler.domain.workflow import FailurePolicy, FlowLike, Workflow, new_workflow_id
from hub_scheduler.runtime.alerts import AlertMonitor
from hub_scheduler.runtime.executor import InlineExecutor
from hub_scheduler.runtime.scheduler import Scheduler
from hub_scheduler.runtime.tracing import start_send
from hub_scheduler.runtime.worker import Worker, WorkerSettings
from hub_scheduler.runtime.workflows import WorkflowEngine

H = TypeVar("H", bound=Handler)

__all__ = ["MEMORY_URL", "REDIS_URL_ENV", "URL_ENV", "Hub", "default_url"]


def _rate(rate: RateLimit | str | None, key: str | None) -> RateLimit | None:
    """The rate limit `hub.job` was given, keyed by payload field `key` when given."""
    if isinstance(rate, str):
        return RateLimit.parse(rate, key)
    if rate is not None and key is not None:
        return attrs.evolve(rate, key=key)
    if rate is None and key is not None:
        raise InvalidJobError("rate_key", "is given without a rate_limit to key")
    return rate


def _unique(unique: Uniqueness | bool | Sequence[str]) -> Uniqueness | None:
    """The uniqueness `hub.job` was given."""
    if isinstance(unique, Uniqueness):
        return unique
    if unique is True:
        return Uniqueness()
    if unique is False:
        return None
    if isinstance(unique, str):
        return Uniqueness((unique,))
    return Uniqueness(tuple(unique))


def default_url() -> str:
    """The backend URL the environment names (`configured_url`), else ``memory://``."""
    return url_from_environment(os.environ)


class Hub:
    """Jobs, queue and workers of one application.

    Args:
        backend: a backend URL — ``redis://host:port/db`` (or ``rediss://``) or
            ``postgresql://user@host/db`` (with the ``postgres`` extra; migrate its schema
            first) for production, ``memory://`` to run everything in this process — or an
            open `Backend`.
            Default: the one the environment names (``HUB_SCHEDULER_URL``, else
            ``HUB_SCHEDULER_REDIS_URL``, ``REDIS_URL``, ``REDIS_HOST``/``_PORT``/``_PASSWORD``/
            ``_DB``), else memory.
        prefix: namespace in the store; hubs with different prefixes share it without
            meeting (ignored when an open `Backend` is passed: it has its own).
        clock: where time comes from (tests pass a `FakeClock`).
        notifier: told about dead-lettered runs (default: an ERROR log record).
        retention: how long finished runs stay in history.
        payload_limit: the largest encoded payload accepted, in bytes (512 KiB by default).
        registry: the jobs, to share them with another hub (`with_backend` does); a new,
            empty one by default.
        alerts: where alert notices go (an `AppriseNotifier`, a `LoggingNotifier`, ...);
            given, every scheduler of this hub evaluates the alert rules (`alert_monitor`),
            each alert sent once however many schedulers run. None: no alert rules.
        alert_policy: the rules' thresholds (`AlertPolicy` defaults).

    Example:
        >>> hub = Hub()
        >>> @hub.job("sendEmail", priority="high")
        ... async def send_email(ctx):
        ...     ctx.logger.info("sending to %s", ctx.payload["to"])
    """

    def __init__(
        self,
        backend: Backend | str | None = None,
        *,
        prefix: str = "hub",
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        retention: timedelta = timedelta(days=90),
        payload_limit: int = DEFAULT_PAYLOAD_LIMIT,
        registry: Registry | None = None,
        alerts: AlertChannel | None = None,
        alert_policy: AlertPolicy | None = None,
    ) -> None:
        if backend is None or isinstance(backend, str):
            config = BackendConfig(
                clock or SystemClock(), prefix, retention=retention, payload_limit=payload_limit
            )
            backend = open_backend(backend or default_url(), config)
        self.backend: Backend = backend
        self.clock: Clock = backend.config.clock
        self.notifier: Notifier = notifier or LoggingNotifier()
        self.registry = registry if registry is not None else Registry()
        self.alerts: AlertChannel | None = alerts
        self.alert_policy: AlertPolicy = alert_policy or AlertPolicy()
        #: The dashboard's address, for the links in alerts.
        self.dashboard_url = "/admin"
        self.admin = AdminService(backend, self.registry, self.clock)
        #: The queue's depth over the last hour, day and week (schedulers sample it).
        self.depth = DepthHistory(backend.shared, backend.queue)
        self._workflows: WorkflowEngine | None = None

    def with_backend(
        self,
        backend: Backend | str,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
    ) -> Hub:
        """The same hub (its jobs, shared, and its prefix, retention and payload limit) on
        another store; the clock and notifier stay unless given (an open `Backend` brings
        its own clock)."""
        config = self.backend.config
        return Hub(
            backend,
            prefix=config.prefix,
            clock=clock or self.clock,
            notifier=notifier or self.notifier,
            retention=config.retention,
            payload_limit=config.payload_limit,
            registry=self.registry,
            alerts=self.alerts,
            alert_policy=self.alert_policy,
        )

    # --- the backend's ports ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The backend's URL, any password masked."""
        return self.backend.url

    @property
    def prefix(self) -> str:
        """The hub's namespace in the store."""
        return self.backend.config.prefix

    @property
    def queue(self) -> JobQueue:
        """Runs waiting, delayed and in flight; pause and resume."""
        return self.backend.queue

    @property
    def dead_letters(self) -> DeadLetters:
        """Runs that used every attempt: list, retry, delete, purge."""
        return self.backend.dead_letters

    @property
    def history(self) -> RunHistory:
        """Every run for the retention, newest first."""
        return self.backend.history

    @property
    def schedules(self) -> ScheduleStore:
        """Stored schedules and their slot ledger."""
        return self.backend.schedules

    @property
    def stats(self) -> Stats:
        """Per-job outcome counts and durations."""
        return self.backend.stats

    @property
    def audit(self) -> AuditLog:
        """The admin audit trail."""
        return self.backend.audit

    @property
    def presence(self) -> Presence:
        """Live workers and schedulers."""
        return self.backend.presence

    # --- registering -----------------------------------------------------------------------

    def job(
        self,
        name: str | None = None,
        *,
        description: str = "",
        priority: Priority | int | str = Priority.NORMAL,
        retry: RetryPolicy | None = None,
        timeout: timedelta = timedelta(seconds=30),
        schedules: Iterable[Schedule | ScheduleTrigger] = (),
        max_running: int | None = None,
        rate_limit: RateLimit | str | None = None,
        rate_key: str | None = None,
        unique: Uniqueness | bool | Sequence[str] = False,
    ) -> Callable[[H], H]:
        """Register the decorated function as a job (named after it unless `name` is given).

        The handler takes one `JobContext` argument; it may be async or plain (plain ones run
        in a thread). Raising fails the attempt, which is retried per `retry`. `max_running`
        caps how many of its runs are active at once across all workers; `rate_limit`
        (``"10/min"``) how many start per period, per value of payload field `rate_key` when
        given; `unique` allows one unfinished run at a time (``True``), or one per values of
        the payload fields named (``("tenant",)``), or a `Uniqueness` that replaces a
        waiting run instead of keeping it (see `JobDefinition`).
        """

        def register(handler: H) -> H:
            job_name: str = name or str(getattr(handler, "__name__", ""))
            definition = JobDefinition(
                job_name,
                description=description or (handler.__doc__ or "").strip().split("\n")[0],
                priority=priority,
                retry=retry or RetryPolicy(),
                timeout=timeout,
                schedules=tuple(schedules),
                max_running=max_running,
                rate_limit=_rate(rate_limit, rate_key),
                unique=_unique(unique),
            )
            self.registry.add(definition, handler)
            return handler

        return register

    # --- enqueueing -----------------------------------------------------------------------

    async def enqueue(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        priority: Priority | int | str | None = None,
        delay: timedelta | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        connection: object | None = None,
    ) -> str:
        """Enqueue one run of job `name`; returns its run id.

        With an `idempotency_key` seen within the job's window, nothing is enqueued and the
        first run's id is returned. With a `connection` (your own open database connection,
        e.g. a psycopg ``AsyncConnection`` on a ``postgresql://`` backend's database), the
        run is written inside that connection's transaction: it exists if and only if your
        transaction commits. Raises `JobNotFoundError` for an unregistered name, `PayloadError`
        for a payload that is not a JSON object or is too large, and
        `TransactionalEnqueueUnsupportedError` for a `connection` on a backend that cannot
        use one.
        """
        if run_at is not None:
            delay = max(run_at - self.clock.now(), timedelta(0))
        job = Job(name, dict(payload or {}), priority, delay, idempotency_key)
        request = self.registry.request(job, self.clock.now())
        [answer] = await self._enqueue([request], connection)
        return answer.run_id

    async def enqueue_many(
        self, jobs: Sequence[Job], *, connection: object | None = None
    ) -> list[str]:
        """Enqueue many runs in as few round trips as possible; returns their ids in order.

        `connection` works as for `enqueue`: all of them exist iff your transaction commits.
        """
        now = self.clock.now()
        answers = await self._enqueue([self.registry.request(job, now) for job in jobs], connection)
        return [answer.run_id for answer in answers]

    async def enqueue_template(
        self,
        template: Job,
        overrides: Iterable[Mapping[str, Any]],
        *,
        connection: object | None = None,
    ) -> list[str]:
        """Enqueue one run of `template` per item of `overrides`, each with the template's
        payload updated by the item (its priority, delay and job are the template's; an
        ``idempotency_key`` in the template would make them one run, so it is refused).
        One call, as few round trips as `enqueue_many`; returns the ids in order."""
        if template.idempotency_key is not None:
            raise InvalidJobError(
                "idempotency_key", "a template's runs would share it: give none in the template"
            )
        jobs = [attrs.evolve(template, payload={**template.payload, **o}) for o in overrides]
        return await self.enqueue_many(jobs, connection=connection)

    async def _enqueue(
        self, requests: Sequence[EnqueueRequest], connection: object | None
    ) -> list[Enqueued]:
        trace = start_send(requests)  # None unless the application traces (OpenTelemetry)
        if trace is None:
            return await self._store(requests, connection)
        with trace:
            answers = await self._store(trace.requests, connection)
            trace.answered(answers)
        return answers

    async def _store(
        self, requests: Sequence[EnqueueRequest], connection: object | None
    ) -> list[Enqueued]:
        if connection is None:
            return await self.queue.enqueue(requests)
        queue = self.queue
        if not isinstance(queue, TransactionalEnqueue):
            raise TransactionalEnqueueUnsupportedError(self.url)
        return await queue.enqueue_in(connection, requests)

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run that has not finished; returns it as it is now.

        A waiting run (queued, delayed, or waiting for a retry) is cancelled at once. A
        running one gets a cancel request: its handler sees `JobContext.cancelled` within
        the worker's ``poll`` (at once where the backend signals) and has the worker's
        ``cancel_grace`` to stop before its task is cancelled; the run then ends
        ``cancelled`` and is never retried — unless it succeeds first. Raises
        `RunNotFoundError`, or `IllegalTransitionError` for a finished run. Admin actions
        that should be audited go through ``hub.admin.cancel`` instead.
        """
        return await self.queue.cancel(run_id)

    # --- workflows ------------------------------------------------------------------------

    @property
    def workflows(self) -> WorkflowEngine:
        """The workflow engine over this hub's backend (workers apply its events)."""
        if self._workflows is None:
            self._workflows = WorkflowEngine(
                self.backend.workflows,
                self.queue,
                self.history,
                self.registry,
                self.clock,
                self.backend.results,
                retention=self.backend.config.retention,
            )
        return self._workflows

    async def start_workflow(
        self,
        flow: FlowLike,
        *,
        name: str = "",
        on_failure: FailurePolicy | str = FailurePolicy.FAIL,
        compensate: FlowLike | None = None,
    ) -> Workflow:
        """Start a workflow built with `step`, `chain` and `group`; returns it as stored
        (its id, its steps and their states). Its first steps are enqueued at once; every
        other one when the steps it waits for have ended (see `FailurePolicy` for what a
        failure does). Raises `JobNotFoundError` for a step whose job is not registered
        here, `PayloadError` for a payload that cannot be stored, and `InvalidJobError` for
        a flow that is empty, too big or names a step twice."""
        workflow = Workflow.new(
            new_workflow_id(), flow, self.clock.now(), name=name,
            policy=FailurePolicy(on_failure), compensate=compensate,
        )  # fmt: skip
        for member in workflow.members():
            self.registry.get(member.job)
            encode_payload(member.job, member.payload, self.backend.config.payload_limit)
        return await self.workflows.start(workflow)

    async def workflow(self, workflow_id: str) -> Workflow:
        """A workflow as last recorded. Raises `WorkflowNotFoundError`."""
        return (await self.backend.workflows.get(workflow_id))[0]

    async def cancel_workflow(self, workflow_id: str) -> Workflow:
        """Cancel a workflow: steps not started never will, unfinished runs are cancelled
        (as `cancel` does). Raises `WorkflowNotFoundError`."""
        return await self.workflows.cancel(workflow_id)

    # --- results --------------------------------------------------------------------------

    async def result(self, run_id: str) -> Any:
        """What the run's handler returned (None when it returned nothing, or a value that
        could not be kept). Raises `RunNotFoundError`, and `ResultNotReadyError` while the
        run has not succeeded (it is queued, running, waiting for a retry, dead...)."""
        run = await self.history.get(run_id)
        if run.state is not RunState.SUCCEEDED:
            raise ResultNotReadyError(run_id, run.state.value)
        stored = await self.backend.results.result(run_id)
        return None if stored is None else stored.value

    async def progress(self, run_id: str) -> Progress | None:
        """The latest progress the run reported (`JobContext.progress`), or None."""
        return await self.backend.results.progress(run_id)

    # --- working --------------------------------------------------------------------------

    def worker(
        self,
        settings: WorkerSettings | None = None,
        *,
        executor: Executor | None = None,
        **overrides: Any,
    ) -> Worker:
        """A worker for this hub's jobs; use ``async with hub.worker(concurrency=5):``.

        `executor` runs the handlers (directly in this process by default; the taskiq
        broker passes its own, to run them under ``taskiq worker``).
        """
        settings = attrs.evolve(settings or WorkerSettings(), **overrides)
        return Worker(
            queue=self.queue,
            history=self.history,
            presence=self.presence,
            registry=self.registry,
            clock=self.clock,
            notifier=self.notifier,
            executor=executor or InlineExecutor(),
            signals=self.backend.signals,
            results=self.backend.results,
            settings=settings,
            retention=self.backend.config.retention,
            workflows=self.workflows,
        )

    # --- scheduling -----------------------------------------------------------------------

    def declared_schedules(self) -> list[Schedule]:
        """Every schedule declared in code on the registered jobs."""
        return [s for job in self.registry for s in job.definition.schedules]

    async def sync_schedules(self) -> None:
        """Upsert the schedules declared in code (runtime state such as pauses is kept)."""
        await self.schedules.sync_declared(self.declared_schedules(), self.clock.now())

    def alert_monitor(self, channel: AlertChannel | None = None, **overrides: Any) -> AlertMonitor:
        """An alert monitor over this hub's backend, sending to `channel` (default: the
        hub's `alerts`, else a log record per notice). Schedulers run one when the hub has
        `alerts`; call its ``evaluate()`` to evaluate the rules yourself."""
        if channel is None:
            channel = self.alerts or LoggingNotifier()
        options: dict[str, Any] = {
            "backend": self.backend, "registry": self.registry, "clock": self.clock,
            "channel": channel, "policy": self.alert_policy, "dashboard": self.dashboard_url,
        }  # fmt: skip
        return AlertMonitor(**(options | overrides))

    def scheduler(self, **overrides: Any) -> Scheduler:
        """A scheduler for this hub's schedules; see `scheduling` to run one."""
        options: dict[str, Any] = {
            "signals": self.backend.signals,
            "declared": tuple(self.declared_schedules()),
            "notifier": self.notifier,
            "alerts": self.alert_monitor() if self.alerts is not None else None,
            "depth": self.depth,
        }
        return Scheduler(
            self.schedules, self.presence, self.registry, self.clock, **(options | overrides)
        )

    @contextlib.asynccontextmanager
    async def scheduling(self, **overrides: Any) -> AsyncIterator[Scheduler]:
        """Sync the declared schedules, then run a scheduler for the duration of the block.

        Run as many as you like (one per process or replica): each slot fires exactly once.
        """
        await self.sync_schedules()
        scheduler = self.scheduler(**overrides)
        task = asyncio.create_task(scheduler.run(), name="hub-scheduler")
        try:
            yield scheduler
        finally:
            scheduler.stop()
            done, _ = await asyncio.wait({task}, timeout=10)
            if task in done:
                task.result()  # re-raise what stopped it, if anything did
            else:
                task.cancel()

    async def ping(self) -> None:
        """Return when the store answers; raise `BackendUnavailableError` when it does not."""
        await self.backend.ping()

    async def aclose(self) -> None:
        """Close the backend's connections."""
        await self.backend.aclose()

    async def __aenter__(self) -> Hub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
