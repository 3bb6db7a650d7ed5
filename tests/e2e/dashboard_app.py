"""The browser test's app: the 11 reference jobs, quick and predictable.

Every job succeeds at once except `retryFailedEmails`, which always fails with no retries,
so the test can make a dead letter on demand.
"""

from __future__ import annotations

from hub_scheduler import Cron, Hub, JobContext, RetryPolicy
from hub_scheduler.demo import JOBS, SYDNEY

hub = Hub()
ALWAYS_FAILS = "retryFailedEmails"


async def quick(ctx: JobContext) -> None:
    """Succeed at once."""
    del ctx


async def broken(ctx: JobContext) -> None:
    """Fail every time."""
    raise RuntimeError(f"{ctx.run.job}: the mail server refused the connection")


for name, (expression, priority, description, _) in JOBS.items():
    hub.job(
        name,
        description=description,
        priority=priority,
        retry=RetryPolicy.none() if name == ALWAYS_FAILS else RetryPolicy(),
        schedules=[Cron(expression, SYDNEY)],
    )(broken if name == ALWAYS_FAILS else quick)
