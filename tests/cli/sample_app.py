"""A tiny app for the CLI tests: one job that records its run id in Redis."""

from __future__ import annotations

import os
from typing import cast

from hub_scheduler import Hub, JobContext
from hub_scheduler.adapters.redis.backend import RedisBackend

hub = Hub(prefix=os.environ.get("SAMPLE_PREFIX", "sample"))


@hub.job("record")
async def record(ctx: JobContext) -> None:
    """Push the run id onto a list the test waits on."""
    await cast("RedisBackend", hub.backend).client.rpush(f"{{{hub.prefix}}}:test:ran", ctx.run_id)


not_a_hub = 42
