"""A worker process for the crash test: its job blocks on the first delivery, forever."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import cast

from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.hub import Hub


async def main() -> None:
    """Run one worker with a 2 s lease until killed."""
    hub = Hub(os.environ["HUB_URL"], prefix=os.environ["HUB_PREFIX"])
    started_key = os.environ["HUB_STARTED_KEY"]

    @hub.job("crashable")
    async def crashable(ctx: JobContext) -> None:
        await cast("RedisBackend", hub.backend).client.rpush(
            started_key, f"{ctx.run_id}:{ctx.run.stalls}"
        )
        await asyncio.Event().wait()  # never finishes: the test SIGKILLs this process

    async with hub.worker(lease=timedelta(seconds=2)):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
