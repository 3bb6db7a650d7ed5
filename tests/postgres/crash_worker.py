"""A worker process for the crash test on PostgreSQL: its job announces itself with a NOTIFY,
then blocks forever (the test SIGKILLs the process)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import psycopg

from hub_scheduler.domain.registry import JobContext
from hub_scheduler.hub import Hub


async def main() -> None:
    """Run one worker with a 2 s lease until killed."""
    url = os.environ["HUB_URL"]
    hub = Hub(url, prefix=os.environ["HUB_PREFIX"])
    channel = os.environ["HUB_STARTED_CHANNEL"]

    @hub.job("crashable")
    async def crashable(ctx: JobContext) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            started = f"{ctx.run_id}:{ctx.run.stalls}"
            await conn.execute("SELECT pg_notify(%s, %s)", [channel, started])
        await asyncio.Event().wait()

    async with hub.worker(lease=timedelta(seconds=2)):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
