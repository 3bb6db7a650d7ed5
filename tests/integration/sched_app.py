"""An app for the scheduler-replica test: one job on a 1-second schedule."""

from __future__ import annotations

import os
from datetime import timedelta

from hub_scheduler import Every, Hub, JobContext, MisfirePolicy, Schedule

hub = Hub(prefix=os.environ.get("HUB_PREFIX", "sched-test"))


@hub.job(
    "tick",
    schedules=[
        Schedule(Every(timedelta(seconds=1)), misfire=MisfirePolicy.skip(timedelta(seconds=5)))
    ],
)
async def tick(ctx: JobContext) -> None:
    """Nothing to do: the test counts the runs the schedulers enqueue."""
    del ctx
