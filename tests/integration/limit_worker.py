"""A worker process for the flow-control tests: jobs ``exclusive`` (max_running=1) and
``throttled`` (5 starts per second) write when each attempt starts and ends, with this
process's id, to the file HUB_EVENTS names."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta

from hub_scheduler.domain.registry import JobContext
from hub_scheduler.hub import Hub


def _record(path: str, what: str, run_id: str) -> None:
    # One short O_APPEND write per event: lines from several processes never interleave.
    line = f"{what} {run_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def main() -> None:
    """Run one worker (concurrency 5, a 2 s lease) until stopped or killed."""
    hub = Hub(os.environ["HUB_URL"], prefix=os.environ["HUB_PREFIX"])
    events = os.environ["HUB_EVENTS"]

    @hub.job("exclusive", max_running=1)
    async def exclusive(ctx: JobContext) -> None:
        _record(events, "start", ctx.run_id)
        await asyncio.sleep(float(ctx.payload["seconds"]))
        _record(events, "end", ctx.run_id)

    @hub.job("throttled", rate_limit="5/s")
    async def throttled(ctx: JobContext) -> None:
        _record(events, "start", ctx.run_id)
        await asyncio.sleep(float(ctx.payload["seconds"]))
        _record(events, "end", ctx.run_id)

    async with hub, hub.worker(concurrency=5, lease=timedelta(seconds=2)):
        _record(events, "ready", "-")
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
