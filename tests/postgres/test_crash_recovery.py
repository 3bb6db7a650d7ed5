"""Real processes on PostgreSQL: a SIGKILLed worker's job is finished by another worker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from hub_scheduler import RunState
from hub_scheduler.adapters.postgres import migrate
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.hub import Hub

pytestmark = pytest.mark.postgres

CRASH_WORKER = Path(__file__).with_name("crash_worker.py")


async def test_sigkilled_worker_job_is_finished_by_another(pg_url: str, pg_prefix: str) -> None:
    """Kill -9 a worker mid-job: after its 2 s lease expires another worker runs it (1 stall)."""
    await migrate(pg_url, pg_prefix)
    channel = f"hubtest_started_{uuid.uuid4().hex[:10]}"
    async with (
        Hub(pg_url, prefix=pg_prefix) as hub,
        await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as listener,
    ):
        finished = asyncio.Event()
        seen: list[str] = []

        @hub.job("crashable")
        async def crashable(ctx: JobContext) -> None:
            seen.append(f"{ctx.run_id}:{ctx.run.stalls}")
            finished.set()

        await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        run_id = await hub.enqueue("crashable")
        env = {**os.environ, "HUB_URL": pg_url, "HUB_PREFIX": pg_prefix}
        env["HUB_STARTED_CHANNEL"] = channel
        doomed = await asyncio.create_subprocess_exec(sys.executable, str(CRASH_WORKER), env=env)
        try:
            started = [n.payload async for n in listener.notifies(timeout=20, stop_after=1)]
            assert started == [f"{run_id}:0"], "the first worker never started the job"
        finally:
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
        assert doomed.returncode == -signal.SIGKILL
        assert (await hub.history.get(run_id)).state is RunState.ACTIVE

        async with hub.worker(lease=timedelta(seconds=2)):
            await asyncio.wait_for(finished.wait(), 20)
        run = await hub.history.get(run_id)
        assert (run.state, run.stalls, run.attempt) == (RunState.SUCCEEDED, 1, 1)
        assert seen == [f"{run_id}:1"]
