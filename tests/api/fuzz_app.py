"""The app the schemathesis fuzz test serves with uvicorn (memory:// or the test Redis)."""

from __future__ import annotations

import os

from hub_scheduler import Cron, Hub, JobContext
from hub_scheduler.entrypoints.api.app import create_app
from hub_scheduler.entrypoints.settings import Settings

hub = Hub(
    os.environ.get("FUZZ_REDIS_URL", "memory://"), prefix=os.environ.get("FUZZ_PREFIX", "fuzz")
)


@hub.job("syncXero", schedules=[Cron("0 2 * * *", "Australia/Sydney")])
async def sync_xero(ctx: JobContext) -> None:
    """Never run here: the fuzz test only exercises the API."""
    del ctx


app = create_app(
    hub,
    Settings(
        url=hub.url,
        jwt_secret=os.environ.get("FUZZ_SECRET"),
        rate_limit_reads=100_000,
        rate_limit_mutations=100_000,
    ),
)
