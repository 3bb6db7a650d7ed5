"""Real processes on real Redis: a SIGKILLed worker's job is finished by another worker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from hub_scheduler import RunState
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.hub import Hub
from tests.conftest import redis_of

pytestmark = pytest.mark.redis

IDLE = float(os.environ.get("HUB_TEST_IDLE", "15"))
CRASH_WORKER = Path(__file__).with_name("crash_worker.py")


async def test_sigkilled_worker_job_is_finished_by_another(redis_url: str, redis_hub: Hub) -> None:
    """Kill -9 a worker mid-job: after its 2 s lease expires another worker runs it (1 stall)."""
    hub, prefix = redis_hub, redis_hub.prefix
    started_key = f"{{{prefix}}}:test:started"  # in the hub's namespace: dropped with it
    finished = asyncio.Event()

    @hub.job("crashable")
    async def crashable(ctx: JobContext) -> None:
        await redis_of(hub).rpush(started_key, f"{ctx.run_id}:{ctx.run.stalls}")
        finished.set()

    run_id = await hub.enqueue("crashable")
    env = {**os.environ, "HUB_URL": redis_url, "HUB_PREFIX": prefix}
    env["HUB_STARTED_KEY"] = started_key
    doomed = await asyncio.create_subprocess_exec(sys.executable, str(CRASH_WORKER), env=env)
    try:
        first = await redis_of(hub).blpop([started_key], timeout=20)
        assert first is not None, "the first worker never started the job"
        assert first[1] == f"{run_id}:0".encode()
    finally:
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
    assert doomed.returncode == -signal.SIGKILL
    assert (await hub.history.get(run_id)).state is RunState.ACTIVE

    async with hub.worker(lease=timedelta(seconds=2)):
        await asyncio.wait_for(finished.wait(), 20)
    run = await hub.history.get(run_id)
    assert (run.state, run.stalls, run.attempt) == (RunState.SUCCEEDED, 1, 1)
    assert await redis_of(hub).lrange(started_key, 0, -1) == [f"{run_id}:1".encode()]


async def test_idle_worker_outlives_the_socket_timeout(redis_hub: Hub) -> None:
    """A worker idle for 15 s (three times redis-py's 5 s default) still picks up new work."""
    hub = redis_hub
    ran = asyncio.Event()

    @hub.job("late")
    async def late(ctx: JobContext) -> None:
        ran.set()

    async with hub.worker() as worker:
        await asyncio.sleep(IDLE)  # the behaviour under test is idling this long
        await hub.enqueue("late")
        await asyncio.wait_for(ran.wait(), 5)
        assert worker.started.is_set()
