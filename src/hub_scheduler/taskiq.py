"""hub_scheduler as a taskiq broker: an existing taskiq app switches by one line.

>>> from hub_scheduler.taskiq import HubBroker
>>> broker = HubBroker("redis://localhost:6379/0")    # instead of ListQueueBroker(...)

``@broker.task`` functions become hub jobs (named after the task), ``.kiq()`` enqueues a run
through the hub's queue, and ``taskiq worker app:broker`` runs them under leases: a worker
that dies has its runs finished by another, failures are retried with backoff and end in the
dead-letter queue. Schedule labels are fired by the hub's scheduler, exactly once per slot
however many ``taskiq scheduler`` processes run. Labels: ``priority``, ``delay``,
``idempotency_key`` (per kiq); ``timeout``, ``retry_on_error``, ``max_retries``,
``retry_delay``, ``schedule`` (per task).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from taskiq import AckableMessage, AsyncBroker, BrokerMessage, ScheduleSource, TaskiqMessage
from taskiq.abc.formatter import TaskiqFormatter
from taskiq.decor import AsyncTaskiqDecoratedTask
from taskiq.scheduler.scheduled_task import ScheduledTask

from hub_scheduler.adapters.taskiq import calls
from hub_scheduler.adapters.taskiq.results import HubResultBackend
from hub_scheduler.adapters.taskiq.serving import HUB_JOB_TASK, OutcomeMiddleware, ServingExecutor
from hub_scheduler.domain.model import JobDefinition, Priority, new_run_id
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.domain.retry import RetryPolicy
from hub_scheduler.hub import Hub
from hub_scheduler.runtime.worker import Worker, WorkerSettings

__all__ = ["HubBroker", "HubScheduleSource"]

logger = logging.getLogger("hub_scheduler.taskiq")

#: How long `HubBroker.shutdown` waits for its worker to stop, beyond the worker's grace.
_STOP_SLACK = 10.0


class _KeptMessage(BrokerMessage):
    """A formatted message that remembers what it was made from (so `kick` can give the
    caller's task handle the run id the hub assigned)."""

    original: TaskiqMessage | None = None


class _KeepingFormatter(TaskiqFormatter):
    def __init__(self, inner: TaskiqFormatter) -> None:
        self._inner = inner

    def dumps(self, message: TaskiqMessage) -> BrokerMessage:
        formatted = self._inner.dumps(message)
        return _KeptMessage(**formatted.model_dump(), original=message)

    def loads(self, message: bytes) -> TaskiqMessage:
        return self._inner.loads(message)


def _direct_handler(func: Callable[..., Any]) -> Callable[[JobContext], Awaitable[Any]]:
    """How a plain hub worker runs a taskiq task: the function with the call's arguments
    (no taskiq dependencies or middlewares: run ``taskiq worker`` for those)."""

    async def handler(ctx: JobContext) -> Any:
        args = list(ctx.payload.get("args") or [])
        kwargs = dict(ctx.payload.get("kwargs") or {})
        if inspect.iscoroutinefunction(func):
            return await func(*args, **kwargs)
        result = await asyncio.to_thread(func, *args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return handler


class HubBroker(AsyncBroker):
    """A taskiq broker on a hub: the hub's queue, leases, retries, dead letters, schedules.

    Args:
        hub: the `Hub` to use, or a backend URL to open one with (``redis://...``,
            ``postgresql://...``, ``memory://``); default: the one the environment names.
        prefix: the hub's namespace in the store, when `hub` is a URL.
        concurrency: runs one ``taskiq worker`` process holds and runs at once.
        retry: the retry policy of tasks whose labels do not say otherwise (the hub's
            default: 3 retries after 2, 4 and 8 s).
        lease: how long (or seconds) a claim lasts unrenewed (renewed every third of it); a worker
            that dies has its runs taken over this long after its last renewal.
        worker: all the worker settings at once (`concurrency` and `lease` are then ignored).
    """

    def __init__(
        self,
        hub: Hub | str | None = None,
        *,
        prefix: str = "hub",
        concurrency: int = 10,
        retry: RetryPolicy | None = None,
        lease: timedelta | float = timedelta(seconds=30),
        worker: WorkerSettings | None = None,
    ) -> None:
        super().__init__()
        self._owns_hub = not isinstance(hub, Hub)
        self.hub: Hub = hub if isinstance(hub, Hub) else Hub(hub, prefix=prefix)
        self.retry = retry or RetryPolicy()
        if not isinstance(lease, timedelta):
            lease = timedelta(seconds=lease)
        self.worker_settings = worker or WorkerSettings(concurrency=concurrency, lease=lease)
        self.id_generator = new_run_id
        self.result_backend = HubResultBackend(
            self.hub.history, self.hub.backend.results, self.hub.clock
        )
        self.formatter = _KeepingFormatter(self.formatter)
        self._serving: ServingExecutor | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._scheduling: contextlib.AsyncExitStack | None = None
        self._label_scheduled: set[str] = set()
        outcomes = OutcomeMiddleware(lambda: self._serving)
        outcomes.set_broker(self)
        self.middlewares.insert(0, outcomes)  # first in: sees the final result last

        async def run_hub_job(run_id: str) -> None:
            if self._serving is not None:
                await self._serving.hub_job_task()(run_id)

        self.local_task_registry[HUB_JOB_TASK] = self.decorator_class(
            broker=self, original_func=run_hub_job, labels={}, task_name=HUB_JOB_TASK
        )

    # --- registering ----------------------------------------------------------------------

    def _register_task(self, task_name: str, task: AsyncTaskiqDecoratedTask[Any, Any]) -> None:
        """Register the task with taskiq, and as a hub job of the same name."""
        labels = task.labels
        definition = JobDefinition(
            task_name,
            description=(task.original_func.__doc__ or "").strip().split("\n")[0],
            priority=Priority.parse(labels.get("priority", Priority.NORMAL)),
            retry=calls.retry_policy(labels, self.retry),
            timeout=calls.timeout(labels),
            schedules=calls.schedules(labels),
        )
        super()._register_task(task_name, task)
        self.hub.registry.add(definition, _direct_handler(task.original_func))
        if definition.schedules:
            self._label_scheduled.add(task_name)

    # --- enqueueing -----------------------------------------------------------------------

    async def kick(self, message: BrokerMessage) -> None:
        """Enqueue one run of the task through the hub's queue.

        The caller's task handle gets the run id as its task id. A send by taskiq's
        scheduler of a schedule declared in the task's labels enqueues nothing: the hub's
        scheduler fires those slots (once each, however many schedulers run).
        """
        original = message.original if isinstance(message, _KeptMessage) else None
        taskiq_message = original or self.formatter.loads(message.message)
        parsed = taskiq_message.model_copy(deep=True)
        parsed.parse_labels()
        labels = parsed.labels
        if self._from_label_schedule(taskiq_message.task_name, labels):
            await self.ensure_scheduling()
            return
        options = calls.kiq_options(labels)
        run_id = await self.hub.enqueue(
            taskiq_message.task_name,
            calls.message_payload(taskiq_message),
            priority=options.priority,
            delay=options.delay,
            idempotency_key=options.idempotency_key,
        )
        if original is not None:
            original.task_id = run_id

    def _from_label_schedule(self, task_name: str, labels: dict[str, Any]) -> bool:
        # taskiq's LabelScheduleSource sends with a schedule_id and without the task's
        # `schedule` label; runtime schedule sources keep it.
        return (
            task_name in self._label_scheduled
            and "schedule_id" in labels
            and ("schedule" not in labels)
        )

    # --- working --------------------------------------------------------------------------

    async def listen(self) -> AsyncGenerator[bytes | AckableMessage, None]:
        """Run a hub worker in this process and yield the runs it claims (what ``taskiq
        worker`` calls); closing the generator stops the worker from claiming more."""
        serving = ServingExecutor(self, self.hub.registry)
        self._serving = serving
        worker = self.hub.worker(self.worker_settings, executor=serving)
        self._worker = worker
        self._worker_task = asyncio.create_task(worker.run(), name="hub-taskiq-worker")
        messages = serving.messages()
        pending: asyncio.Future[AckableMessage] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(anext(messages))
                await asyncio.wait(
                    {pending, self._worker_task}, return_when=asyncio.FIRST_COMPLETED
                )
                if not pending.done():
                    await self._worker_task  # re-raise what stopped the worker
                    return
                message, pending = pending.result(), None
                yield message
        finally:
            worker.stop()
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await messages.aclose()

    async def startup(self) -> None:
        """Start taskiq's side; in a ``taskiq scheduler`` process, also run the hub's
        scheduler, which fires the schedules of task labels."""
        await super().startup()
        if self.is_scheduler_process:
            await self.ensure_scheduling()

    async def shutdown(self) -> None:
        """Stop the worker (running runs get its grace) and the scheduler, then taskiq's side."""
        if self._worker is not None and self._worker_task is not None:
            self._worker.stop()
            limit = self.worker_settings.grace.total_seconds() + _STOP_SLACK
            await asyncio.wait({self._worker_task}, timeout=limit)
        if self._scheduling is not None:
            await self._scheduling.aclose()
            self._scheduling = None
        await super().shutdown()
        if self._owns_hub:
            await self.hub.aclose()

    async def ensure_scheduling(self) -> None:
        """Run the hub's scheduler in this process until `shutdown` (once, however often
        this is called)."""
        if self._scheduling is not None:
            return
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self.hub.scheduling())
        self._scheduling = stack
        logger.info("hub scheduler started in this taskiq process")


class HubScheduleSource(ScheduleSource):
    """For ``taskiq scheduler``: runs the hub's scheduler in that process, which fires the
    hub's schedules (those of task labels, those declared on hub jobs, those created at
    runtime) once per slot however many such processes run. It hands taskiq's scheduler
    nothing to send itself."""

    def __init__(self, broker: HubBroker) -> None:
        self.broker = broker

    async def startup(self) -> None:
        """Start the hub's scheduler in this process."""
        await self.broker.ensure_scheduling()

    async def get_schedules(self) -> list[ScheduledTask]:
        """Nothing: the hub's scheduler fires the slots."""
        return []
