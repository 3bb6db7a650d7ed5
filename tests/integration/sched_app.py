"""An app for the scheduler-replica test: one job on a 1-second schedule.

The misfire grace (60 s, the default) is far beyond any stall of a loaded CI machine: a slot
found late is still enqueued, so a missing run can only mean a slot lost, not one skipped by
policy (with a 5 s grace, two starved survivors would skip slots by design)."""

from __future__ import annotations

import os
from datetime import timedelta

from hub_scheduler import Every, Hub, JobContext, MisfirePolicy, Schedule

hub = Hub(prefix=os.environ.get("HUB_PREFIX", "sched-test"))


@hub.job(
    "tick",
    schedules=[
        Schedule(Every(timedelta(seconds=1)), misfire=MisfirePolicy.skip(timedelta(seconds=60)))
    ],
)
async def tick(ctx: JobContext) -> None:
    """Nothing to do: the test counts the runs the schedulers enqueue."""
    del ctx
