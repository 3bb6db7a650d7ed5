"""Redis restarted under a worker: it reconnects, and nothing enqueued is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub_scheduler import Hub, Job, RunState
from hub_scheduler.domain.registry import JobContext
from tests.integration.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def server(redis_url: str, tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private append-only Redis (the suite's real-Redis switch must be on)."""
    del redis_url  # only the switch: these tests run their own server
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_waiting_worker_survives_a_restart(server: RedisServer) -> None:
    """A worker idle through a Redis restart runs the next job enqueued after it."""
    async with Hub(server.url) as hub:
        ran = asyncio.Event()

        @hub.job("after")
        async def after(ctx: JobContext) -> None:
            ran.set()

        async with hub.worker():
            await server.restart()
            await hub.enqueue("after")
            await asyncio.wait_for(ran.wait(), 30)


async def test_restart_during_a_busy_drain_loses_nothing(server: RedisServer) -> None:
    """300 jobs, Redis restarted mid-way: every job runs and ends succeeded in history."""
    total = 300
    async with Hub(server.url) as hub:
        seen: set[str] = set()
        halfway = asyncio.Event()
        everything = asyncio.Event()

        @hub.job("work")
        async def work(ctx: JobContext) -> None:
            await asyncio.sleep(0.005)  # a little real work, so the restart lands mid-drain
            seen.add(ctx.run_id)
            if len(seen) >= total // 3:
                halfway.set()
            if len(seen) == total:
                everything.set()

        ids = await hub.enqueue_many([Job("work", {"i": i}) for i in range(total)])
        async with hub.worker(concurrency=5):
            await asyncio.wait_for(halfway.wait(), 30)
            await server.restart()
            await asyncio.wait_for(everything.wait(), 60)
        assert seen == set(ids)
        states = {(await hub.history.get(run_id)).state for run_id in ids}
        assert states == {RunState.SUCCEEDED}
