"""`HubBroker` in one process (the memory backend, taskiq's own Receiver): kiq labels become
enqueue options, task labels the job definition; dependency injection and middlewares keep
working; results, progress, retries and the dead letters behave as on a hub worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from taskiq import Context, TaskiqDepends, TaskiqMiddleware, TaskiqResult, TaskiqScheduler
from taskiq.depends.progress_tracker import ProgressTracker, TaskState
from taskiq.message import TaskiqMessage
from taskiq.receiver import Receiver
from taskiq.schedule_sources import LabelScheduleSource

from hub_scheduler import Cron, Hub, JobContext, Priority, RunState
from hub_scheduler.adapters.taskiq.results import RunFailedError
from hub_scheduler.domain.errors import ResultNotReadyError
from hub_scheduler.domain.retry import RetryPolicy
from hub_scheduler.taskiq import HubBroker
from hub_scheduler.testing import FakeClock, advance_to_next_fire, wait_for_state
from tests.conftest import redis_of

#: taskiq's dependency markers, as a task's parameter defaults.
CONTEXT: Any = TaskiqDepends()
PROGRESS: Any = TaskiqDepends()


@pytest.fixture
async def broker() -> AsyncIterator[HubBroker]:
    """A broker on a fresh in-memory hub."""
    broker = HubBroker("memory://", retry=RetryPolicy(base_delay=timedelta(milliseconds=5)))
    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


@contextlib.asynccontextmanager
async def receiving(broker: HubBroker) -> AsyncIterator[None]:
    """taskiq's Receiver on `broker`, as ``taskiq worker`` runs it, until the block ends."""
    broker.is_worker_process = True
    stop = asyncio.Event()
    receiver = Receiver(broker, max_async_tasks=10, run_startup=False, wait_tasks_timeout=5)
    listening = asyncio.create_task(receiver.listen(stop))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await listening
        await broker.shutdown()


@pytest.fixture
async def still_broker() -> AsyncIterator[HubBroker]:
    """A broker on an in-memory hub whose clock stands still (so a delay is exact: on the
    real clock the store stamps the enqueue a millisecond after the due time was taken)."""
    broker = HubBroker(Hub("memory://", clock=FakeClock()))
    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()
        await broker.hub.aclose()


async def test_kiq_labels_become_priority_delay_and_idempotency(still_broker: HubBroker) -> None:
    """``priority``, ``delay`` and ``idempotency_key`` labels set the run's; the task handle
    carries the run id; the call is stored as versioned JSON."""
    broker = still_broker

    @broker.task(task_name="report")
    async def report(day: str, *, full: bool = False) -> None:
        del day, full

    kicker = report.kicker().with_labels(priority="high", delay=60, idempotency_key="d-1")
    first = await kicker.kiq("2026-03-29", full=True)
    again = await report.kicker().with_labels(idempotency_key="d-1").kiq("other")
    run = await broker.hub.history.get(first.task_id)
    assert again.task_id == first.task_id
    assert (run.job, run.priority, run.state, run.idempotency_key) == (
        "report", Priority.HIGH, RunState.DELAYED, "d-1",
    )  # fmt: skip
    assert run.run_at is not None
    assert run.run_at - run.enqueued_at == timedelta(seconds=60)
    assert run.payload == {
        "v": 1, "args": ["2026-03-29"], "kwargs": {"full": True}, "labels": {},
        "labels_types": {},
    }  # fmt: skip


async def test_task_labels_become_the_job_definition(broker: HubBroker) -> None:
    """``priority``, ``timeout``, ``max_retries``, ``retry_on_error=False`` and ``schedule``
    (cron with a time zone offset) configure the hub job of the same name."""

    @broker.task(
        task_name="nightly",
        priority="low",
        timeout=90,
        max_retries=5,
        schedule=[{"cron": "30 2 * * *", "cron_offset": "Australia/Sydney", "args": [7]}],
    )
    async def nightly(n: int) -> None:
        del n

    @broker.task(task_name="once_only", retry_on_error=False)
    async def once_only() -> None:
        pass

    definition = broker.hub.registry.get("nightly").definition
    assert (definition.priority, definition.timeout, definition.retry.max_retries) == (
        Priority.LOW, timedelta(seconds=90), 5,
    )  # fmt: skip
    [schedule] = definition.schedules
    assert schedule.trigger == Cron("30 2 * * *", "Australia/Sydney")
    assert schedule.payload["args"] == [7]
    assert broker.hub.registry.get("once_only").definition.retry == RetryPolicy.none()


class Recording(TaskiqMiddleware):
    """A user's middleware: it sees every message before and every result after."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """Record the start."""
        self.seen.append(("pre", message.task_name))
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """Record the result."""
        self.seen.append(("post", f"{message.task_name}: {result.return_value!r}"))


async def test_dependencies_middlewares_and_results_keep_working(broker: HubBroker) -> None:
    """A task gets its taskiq `Context` by dependency injection, user middlewares run around
    it, and its return value comes back from ``wait_result()`` and ``hub.result()``."""
    recording = Recording()
    broker.add_middlewares(recording)

    @broker.task(task_name="total")
    async def total(a: int, b: int, context: Context = CONTEXT) -> dict[str, Any]:
        return {"sum": a + b, "task": context.message.task_id}

    task = await total.kiq(2, b=3)
    async with receiving(broker):
        result = await task.wait_result(timeout=10, check_interval=0.01)
    expected = {"sum": 5, "task": task.task_id}
    assert (result.is_err, result.return_value) == (False, expected)
    assert await broker.hub.result(task.task_id) == expected
    assert recording.seen == [("pre", "total"), ("post", f"total: {expected!r}")]


async def test_failures_are_retried_with_backoff_then_dead_lettered(broker: HubBroker) -> None:
    """A failing task with ``max_retries=1`` runs twice, ends in the dead letters, and
    ``wait_result()`` reports its error (not the first attempt's)."""
    calls: list[int] = []

    @broker.task(task_name="flaky", max_retries=1)
    async def flaky() -> None:
        calls.append(len(calls) + 1)
        raise ValueError(f"attempt {len(calls)} failed")

    task = await flaky.kiq()
    async with receiving(broker):
        result = await task.wait_result(timeout=10, check_interval=0.01)
    run = await broker.hub.dead_letters.get(task.task_id)
    assert calls == [1, 2]
    assert [a.outcome.value for a in run.attempts] == ["failed", "gave_up"]
    assert run.attempts[0].retry_delay == timedelta(milliseconds=5)
    assert isinstance(result.error, RunFailedError)
    assert str(result.error) == f"run {task.task_id} is dead: ValueError: attempt 2 failed"
    with pytest.raises(ResultNotReadyError):
        await broker.hub.result(task.task_id)


async def test_progress_of_taskiq_tasks_and_of_hub_jobs(broker: HubBroker) -> None:
    """taskiq's `ProgressTracker` and a hub job's ``ctx.progress`` both report through the
    hub: ``hub.progress(run_id)`` and ``get_progress()`` read the latest report."""
    hub = broker.hub

    @broker.task(task_name="crunch")
    async def crunch(progress: ProgressTracker[Any] = PROGRESS) -> None:
        await progress.set_progress(TaskState.STARTED, {"fraction": 0.5, "message": "half"})

    @hub.job("convert")
    async def convert(ctx: JobContext) -> str:
        await ctx.progress(0.75, "three quarters")
        return "converted"

    task = await crunch.kiq()
    job_run = await hub.enqueue("convert")
    async with receiving(broker):
        await task.wait_result(timeout=10, check_interval=0.01)
        await wait_for_state(hub, job_run, RunState.SUCCEEDED)
    taskiq_progress, job_progress = await hub.progress(task.task_id), await hub.progress(job_run)
    assert taskiq_progress is not None
    assert job_progress is not None
    assert (taskiq_progress.fraction, taskiq_progress.message) == (0.5, "half")
    assert (job_progress.fraction, job_progress.message) == (0.75, "three quarters")
    assert await task.get_progress() is not None
    assert await hub.result(job_run) == "converted"


async def test_a_plain_hub_worker_keeps_results_and_progress() -> None:
    """Without taskiq: a hub job's return value is `hub.result`, and `ctx.progress` shows."""
    async with Hub("memory://") as hub:

        @hub.job("square")
        async def square(ctx: JobContext) -> int:
            await ctx.progress(1.0, "done")
            return int(ctx.payload["n"]) ** 2

        run_id = await hub.enqueue("square", {"n": 7})
        with pytest.raises(ResultNotReadyError):
            await hub.result(run_id)
        async with hub.worker():
            await wait_for_state(hub, run_id, RunState.SUCCEEDED)
        progress = await hub.progress(run_id)
        assert await hub.result(run_id) == 49
        assert progress is not None
        assert (progress.fraction, progress.message) == (1.0, "done")


async def test_results_on_redis_are_versioned_json_that_expires_with_retention() -> None:
    """On the Redis backend a result sits under the hub's hash-tagged prefix as versioned
    JSON (never pickle), expiring after the history retention."""
    async with Hub("memory://", prefix="res", retention=timedelta(days=7)) as hub:

        @hub.job("answer")
        async def answer(ctx: JobContext) -> dict[str, int]:
            del ctx
            return {"answer": 42}

        run_id = await hub.enqueue("answer")
        async with hub.worker():
            await wait_for_state(hub, run_id, RunState.SUCCEEDED)
        client = redis_of(hub)
        key = f"{{res}}:result:{run_id}"
        raw = await client.get(key)
        assert isinstance(raw, bytes)
        stored = json.loads(raw)
        ttl = await client.ttl(key)
    assert stored["v"] == 1
    assert stored["data"]["return_value"] == {"answer": 42}
    assert timedelta(days=7) - timedelta(minutes=1) < timedelta(seconds=ttl) <= timedelta(days=7)


async def test_label_schedules_fire_once_per_slot_however_many_taskiq_schedulers() -> None:
    """Sends of label schedules by taskiq's scheduler (two of them here) enqueue nothing;
    the hub's scheduler fires the slot, once, in the label's time zone."""
    clock = FakeClock()
    hub = Hub("memory://", clock=clock)
    broker = HubBroker(hub)

    @broker.task(
        task_name="morning",
        schedule=[{"cron": "0 9 * * *", "cron_offset": "Europe/Berlin", "args": [1]}],
    )
    async def morning(n: int) -> None:
        del n

    replicas = []
    for _ in range(2):
        source = LabelScheduleSource(broker)
        await source.startup()
        replicas.append((TaskiqScheduler(broker, [source]), source))
    try:
        for scheduler, source in replicas:
            [scheduled] = await source.get_schedules()
            await scheduler.on_ready(source, scheduled)
        assert (await hub.history.list()).items == ()
        [fired] = await advance_to_next_fire(hub)
        run = await hub.history.get(fired)
        assert run.slot is not None
        local = run.slot.astimezone(ZoneInfo("Europe/Berlin"))
        assert (run.job, run.payload["args"], local.hour, local.minute) == ("morning", [1], 9, 0)
    finally:
        await broker.shutdown()
        await hub.aclose()
