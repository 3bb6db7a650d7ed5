"""Workers competing for one queue on PostgreSQL: SKIP LOCKED claims hand each run to one
worker, and settles of many jobs at once never deadlock on the statistics counters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

import pytest

from hub_scheduler import Hub, RunState
from hub_scheduler.adapters.postgres import migrate
from hub_scheduler.domain.registry import Job, JobContext

pytestmark = pytest.mark.postgres

RUNS = 1200
JOBS = ("alpha", "beta", "gamma")
WORKERS = 4


async def test_competing_workers_run_each_run_once(
    pg_url: str, pg_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Four idle workers on four pools drain 1200 runs of three jobs enqueued at once: each
    runs once, every outcome is counted, and no round trip had to be retried."""
    await migrate(pg_url, pg_prefix)
    calls: Counter[str] = Counter()
    ran_by: set[str | None] = set()
    all_done = asyncio.Event()
    hubs = [Hub(pg_url, prefix=pg_prefix) for _ in range(WORKERS)]
    for hub in hubs:
        for name in JOBS:

            @hub.job(name)
            async def handler(ctx: JobContext) -> None:
                calls[ctx.run_id] += 1
                ran_by.add(ctx.run.worker)
                if len(calls) == RUNS:
                    all_done.set()

    caplog.set_level(logging.WARNING, logger="hub_scheduler")
    async with contextlib.AsyncExitStack() as stack:
        for hub in hubs:
            await stack.enter_async_context(hub)
            await stack.enter_async_context(hub.worker(concurrency=10))
        run_ids = await hubs[0].enqueue_many([Job(JOBS[i % 3], {"i": i}) for i in range(RUNS)])
        await asyncio.wait_for(all_done.wait(), 60)
    assert set(calls) == set(run_ids)
    assert set(calls.values()) == {1}
    assert len(ran_by) >= 2  # they did compete
    async with Hub(pg_url, prefix=pg_prefix) as hub:
        page = await hub.history.list(limit=RUNS)
        assert Counter(r.state for r in page.items) == {RunState.SUCCEEDED: RUNS}
        totals = [(await hub.stats.job(name, hub.clock.now())).totals.succeeded for name in JOBS]
        assert totals == [RUNS // 3] * 3
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
