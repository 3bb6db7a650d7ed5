"""A tiny app for the CLI tests: one job that records its run id in Redis."""

from __future__ import annotations

import os

from hub_scheduler import Hub, JobContext

hub = Hub(prefix=os.environ.get("SAMPLE_PREFIX", "sample"))


@hub.job("record")
async def record(ctx: JobContext) -> None:
    """Push the run id onto a list the test waits on."""
    await hub.client.rpush(f"{{{hub.prefix}}}:test:ran", ctx.run_id)


not_a_hub = 42
