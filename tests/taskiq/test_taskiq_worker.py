"""Real processes on real Redis: ``taskiq worker`` on `HubBroker` runs kiq'ed tasks under
leases, and a SIGKILLed worker's task is finished by another worker."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from types import ModuleType

import pytest

from hub_scheduler import Hub, RunState
from hub_scheduler.taskiq import HubBroker
from tests.conftest import redis_of

pytestmark = pytest.mark.redis


EXAMPLE = "tests.taskiq.example_app"
CRASH_TASKS = "tests.taskiq.crash_tasks"


async def _taskiq_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskiq", "worker", "tests.taskiq.example_app:broker",
        "tests.taskiq.crash_tasks", "--workers", "1", "--no-configure-logging",
        env=env, start_new_session=True,
    )  # fmt: skip


async def _kill(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signal the worker's whole process group (taskiq's manager and its worker child)."""
    if process.returncode is None:
        os.killpg(process.pid, sig)
    async with asyncio.timeout(30):
        await process.wait()


@pytest.fixture
def env(redis_url: str, redis_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What the app needs (here and in the worker processes): the hub's URL and prefix, and
    two test keys."""
    prefix = redis_hub.prefix
    ours = {
        "HUB_URL": redis_url,
        "HUB_PREFIX": prefix,
        "HUB_STARTS_KEY": f"{{{prefix}}}:test:starts",
        "HUB_STARTED_KEY": f"{{{prefix}}}:test:started",
    }
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **ours}


@pytest.fixture
async def app(env: dict[str, str]) -> AsyncIterator[tuple[ModuleType, ModuleType]]:
    """The example app and the test's tasks, imported afresh on this test's hub, started as
    a client process starts its broker."""
    del env  # in os.environ now
    for name in (EXAMPLE, CRASH_TASKS):
        sys.modules.pop(name, None)
    example = importlib.import_module(EXAMPLE)
    crash = importlib.import_module(CRASH_TASKS)
    broker: HubBroker = example.broker
    await broker.startup()
    try:
        yield example, crash
    finally:
        await broker.shutdown()


async def test_taskiq_worker_runs_kiqed_tasks(
    env: dict[str, str], redis_hub: Hub, app: tuple[ModuleType, ModuleType]
) -> None:
    """``taskiq worker app:broker`` runs what ``.kiq()`` enqueued through the hub's queue."""
    example, _ = app
    task = await example.add_one.kiq(1)
    worker = await _taskiq_worker(env)
    try:
        result = await task.wait_result(timeout=30)
    finally:
        await _kill(worker, signal.SIGTERM)
    run = await redis_hub.history.get(task.task_id)
    assert (run.state, run.job, run.payload["args"]) == (
        RunState.SUCCEEDED, "tests.taskiq.example_app:add_one", [1],
    )  # fmt: skip
    assert result.return_value == 2


async def test_sigkilled_taskiq_worker_task_is_finished_by_another(
    env: dict[str, str], redis_hub: Hub, app: tuple[ModuleType, ModuleType]
) -> None:
    """Kill -9 a ``taskiq worker`` mid-task: once its 2 s lease expires, a second ``taskiq
    worker`` runs the task again and it succeeds (one stall, same attempt)."""
    _, crash = app
    task = await crash.stubborn.kiq("t1")
    client = redis_of(redis_hub)
    doomed = await _taskiq_worker(env)
    try:
        first = await client.blpop([env["HUB_STARTED_KEY"]], timeout=30)
        assert first is not None, "the first worker never started the task"
        assert first[1] == b"t1:1"
    finally:
        await _kill(doomed, signal.SIGKILL)
    assert (await redis_hub.history.get(task.task_id)).state is RunState.ACTIVE

    rescuer = await _taskiq_worker(env)
    try:
        second = await client.blpop([env["HUB_STARTED_KEY"]], timeout=30)
        assert second is not None, "no worker took over the task"
        result = await task.wait_result(timeout=30)
    finally:
        await _kill(rescuer, signal.SIGTERM)
    run = await redis_hub.history.get(task.task_id)
    assert (second[1], result.return_value) == (b"t1:2", "t1 done")
    assert (run.state, run.stalls, run.attempt) == (RunState.SUCCEEDED, 1, 1)
