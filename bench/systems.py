"""The queue systems the benchmark compares, behind one small interface.

Each system is a `BenchSystem`: the harness (`run.py`) uses `enqueue_one` / `enqueue_bulk`
on a client instance, and the worker subprocess (`worker_proc.py`) uses `run_worker` on a
worker instance. A job is always the same no-op: the worker calls the handler it was given
with the job's JSON payload and returns.

Adding a system: subclass `BenchSystem`, add it to `SYSTEMS`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from taskiq import AsyncBroker
from taskiq.receiver import Receiver
from taskiq_redis import ListQueueBroker, RedisStreamBroker

Payload = dict[str, Any]
JobHandler = Callable[[Payload], None]

TASK_NAME = "bench.noop"
# Bulk enqueue for taskiq = `asyncio.gather` over this many `kiq()` calls at a time. taskiq has no
# batch API; 500 was the fastest of 50/100/500/5000 on the 2-core dev box (the client is
# CPU-bound in taskiq's message building, so batching gains little).
TASKIQ_BULK_CHUNK = 500
# How long the Receiver waits for running callbacks after the stop event (no-op jobs: short).
WAIT_TASKS_TIMEOUT_S = 10.0


class SystemUnavailableError(RuntimeError):
    """The system cannot be benchmarked in this checkout (e.g. not written yet)."""


class BenchSystem(ABC):
    """One queue system: a client that enqueues no-op jobs, a worker that runs them.

    `worker_concurrency` is None for a client instance and the worker's concurrency for a
    worker instance (some systems size their fetches by it).
    """

    name: ClassVar[str]
    enqueue_one_method: ClassVar[str]
    enqueue_bulk_method: ClassVar[str]
    worker_method: ClassVar[str]

    def __init__(self, redis_url: str, *, worker_concurrency: int | None = None) -> None:
        self.redis_url = redis_url
        self.worker_concurrency = worker_concurrency

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this system cannot run here, or None when it can."""
        return None

    @abstractmethod
    async def open(self) -> None:
        """Connect and declare whatever the queue needs (called once, before anything else)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def enqueue_one(self, payload: Payload) -> None:
        """Enqueue one no-op job and return once the queue has it."""

    @abstractmethod
    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        """Enqueue many no-op jobs the fastest honest way the library offers."""

    @abstractmethod
    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        """Run jobs, at most `concurrency` at once, calling `handler(payload)` for each.

        Returns after `stop` is set and the jobs already started have finished.
        """


class _TaskiqSystem(BenchSystem):
    """Shared code for taskiq brokers: one registered task, a `Receiver` as the worker."""

    worker_method = "taskiq Receiver(max_async_tasks=C).listen(finish_event), no result backend"
    enqueue_one_method = "await task.kiq(payload)"
    enqueue_bulk_method = f"asyncio.gather of task.kiq() in chunks of {TASKIQ_BULK_CHUNK}"

    def __init__(self, redis_url: str, *, worker_concurrency: int | None = None) -> None:
        super().__init__(redis_url, worker_concurrency=worker_concurrency)
        self._handler: JobHandler | None = None
        self.broker = self._make_broker()
        self.broker.is_worker_process = worker_concurrency is not None

        async def noop(payload: dict[str, Any]) -> None:
            if self._handler is not None:
                self._handler(payload)

        self._task = self.broker.register_task(noop, task_name=TASK_NAME)

    @abstractmethod
    def _make_broker(self) -> AsyncBroker: ...

    async def open(self) -> None:
        await self.broker.startup()

    async def close(self) -> None:
        await self.broker.shutdown()

    async def enqueue_one(self, payload: Payload) -> None:
        await self._task.kiq(payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        for start in range(0, len(payloads), TASKIQ_BULK_CHUNK):
            chunk = payloads[start : start + TASKIQ_BULK_CHUNK]
            await asyncio.gather(*(self._task.kiq(payload) for payload in chunk))

    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        self._handler = handler
        receiver = Receiver(
            self.broker,
            max_async_tasks=concurrency,
            run_startup=False,  # open() already ran broker.startup()
            wait_tasks_timeout=WAIT_TASKS_TIMEOUT_S,
        )
        await receiver.listen(stop)


class TaskiqListSystem(_TaskiqSystem):
    """taskiq-redis `ListQueueBroker`: LPUSH to enqueue, one BRPOP per job, no ack."""

    name = "taskiq-list"

    def _make_broker(self) -> AsyncBroker:
        # redis-py 8 defaults to socket_timeout=5, which kills the un-timed BRPOP of an idle
        # worker (research/taskiq-internals.md 1.1.4).
        return ListQueueBroker(self.redis_url, queue_name="bench:taskiq-list", socket_timeout=None)


class TaskiqStreamSystem(_TaskiqSystem):
    """taskiq-redis `RedisStreamBroker`: XADD, XREADGROUP COUNT C, XACK per job."""

    name = "taskiq-stream"

    def _make_broker(self) -> AsyncBroker:
        # xread_count defaults to 100 whatever the concurrency; sized to the worker's concurrency
        # here, as one would in production (taskiq-internals.md 1.1.2). xread_block stays at its
        # 2 s default, below redis-py 8's 5 s socket timeout.
        return RedisStreamBroker(
            self.redis_url,
            queue_name="bench:taskiq-stream",
            xread_count=self.worker_concurrency or 100,
        )


class HubSystem(BenchSystem):
    """hub_scheduler's own queue: Lua scripts on redis-py, taskiq's Receiver as the engine.

    Every run also gets its history record, a lease and a priority; the worker settles
    finished runs and claims the next ones in one Lua call.
    """

    name = "hub"
    enqueue_one_method = "await hub.enqueue(name, payload)"
    enqueue_bulk_method = "await hub.enqueue_many([...]) (500 runs per Lua call)"
    worker_method = "async with hub.worker(concurrency=C) (taskiq Receiver over our pump)"

    def __init__(self, redis_url: str, *, worker_concurrency: int | None = None) -> None:
        super().__init__(redis_url, worker_concurrency=worker_concurrency)
        from hub_scheduler import Hub  # noqa: PLC0415 - only this system needs it

        self._handler: JobHandler | None = None
        self.hub = Hub(redis_url, prefix="bench")

        @self.hub.job(TASK_NAME)
        async def noop(ctx: Any) -> None:
            if self._handler is not None:
                self._handler(dict(ctx.payload))

        self._name = TASK_NAME

    async def open(self) -> None:
        await self.hub.ping()

    async def close(self) -> None:
        await self.hub.aclose()

    async def enqueue_one(self, payload: Payload) -> None:
        await self.hub.enqueue(self._name, payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        from hub_scheduler import Job  # noqa: PLC0415 - only this system needs it

        await self.hub.enqueue_many([Job(self._name, payload) for payload in payloads])

    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        self._handler = handler
        async with self.hub.worker(concurrency=concurrency):
            await stop.wait()


SYSTEMS: dict[str, type[BenchSystem]] = {
    system.name: system for system in (TaskiqListSystem, TaskiqStreamSystem, HubSystem)
}


def make_system(name: str, redis_url: str, *, worker_concurrency: int | None = None) -> BenchSystem:
    """Build the named system (raises KeyError for an unknown name)."""
    return SYSTEMS[name](redis_url, worker_concurrency=worker_concurrency)
