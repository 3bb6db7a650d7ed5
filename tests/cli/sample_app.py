"""A tiny app for the CLI tests: one job that records its run id in Redis."""

from __future__ import annotations

import os

from hub_scheduler import Hub, JobContext
from tests.conftest import redis_of


def make_hub(prefix: str, url: str | None = "memory://") -> Hub:
    """The sample app's hub (on `url`; None: the environment's): job ``record`` pushes its run
    id onto ``{prefix}:test:ran``."""
    hub = Hub(url, prefix=prefix)

    @hub.job("record")
    async def record(ctx: JobContext) -> None:
        """Push the run id onto a list the test waits on."""
        await redis_of(hub).rpush(f"{{{hub.prefix}}}:test:ran", ctx.run_id)

    return hub


# The worker test runs this app in a subprocess, on the backend its environment names.
hub = make_hub(os.environ.get("SAMPLE_PREFIX", "sample"), None)

not_a_hub = 42
