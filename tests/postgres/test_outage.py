"""Connections lost under load: a worker whose sessions are all killed recovers, and every run
still succeeds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest

from hub_scheduler import Hub, RunState
from hub_scheduler.adapters.postgres import migrate
from hub_scheduler.adapters.postgres.schema import application_name
from hub_scheduler.domain.registry import Job, JobContext

pytestmark = pytest.mark.postgres

RUNS = 200


async def _kill_sessions(url: str, prefix: str) -> int:
    """Terminate every session of hub `prefix` (its pool and its LISTEN connection)."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, application_name="hubtest killer"
    ) as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [application_name(prefix)],
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def test_a_worker_survives_its_sessions_being_killed(pg_url: str, pg_prefix: str) -> None:
    """All of the hub's sessions are terminated mid-drain: the worker reconnects and every one
    of 200 runs ends succeeded."""
    await migrate(pg_url, pg_prefix)
    async with Hub(pg_url, prefix=pg_prefix) as hub:
        done: set[str] = set()
        some_done, all_done = asyncio.Event(), asyncio.Event()

        @hub.job("work")
        async def work(ctx: JobContext) -> None:
            done.add(ctx.run_id)
            if len(done) >= 20:
                some_done.set()
            if len(done) == RUNS:
                all_done.set()

        run_ids = await hub.enqueue_many([Job("work", {"i": i}) for i in range(RUNS)])
        async with hub.worker(concurrency=5, lease=timedelta(seconds=2)):
            await asyncio.wait_for(some_done.wait(), 30)
            assert await _kill_sessions(pg_url, pg_prefix) >= 1
            await asyncio.wait_for(all_done.wait(), 60)
        assert done == set(run_ids)
        page = await hub.history.list(job="work", limit=RUNS)
        assert {run.state for run in page.items} == {RunState.SUCCEEDED}
