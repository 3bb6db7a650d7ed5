"""The demo app: the reference deployment's 11 jobs in Australia/Sydney.

It is what `hub-scheduler serve` runs when given no app, and the example to copy: each job
is a handler registered with its schedule. The handlers only pretend to work (a fraction of a
second to a few seconds) and fail now and then, so retries, dead letters and history show up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from hub_scheduler import Cron, Hub, JobContext, Priority, RetryPolicy

SYDNEY = "Australia/Sydney"
#: The signing secret of this demo's admin API when none is set, so its tokens outlive a
#: restart. It is published, so anyone can sign tokens for the demo; no other app uses it
#: (on memory:// they get a random secret per process).
SECRET = "hub-scheduler-in-memory-demo-secret-not-for-production"  # noqa: S105

hub = Hub()

#: name -> (cron expression, priority, what it does, how often it fails)
JOBS: dict[str, tuple[str, Priority, str, float]] = {
    "feedbackAIAnalysis": ("0 1 * * *", Priority.LOW, "Analyse yesterday's feedback", 0.1),
    "syncXero": ("0 2 * * *", Priority.HIGH, "Pull invoices and payments from Xero", 0.2),
    "syncAccelerate": ("0 3 * * *", Priority.NORMAL, "Sync learner records", 0.1),
    "pdReminders": ("0 8 * * *", Priority.NORMAL, "Remind staff of PD deadlines", 0.05),
    "credentialExpiry": ("0 8 * * *", Priority.HIGH, "Warn of expiring credentials", 0.05),
    "policyReviews": ("0 8 * * *", Priority.NORMAL, "Flag policies due for review", 0.05),
    "complaintSLA": ("0 9 * * *", Priority.CRITICAL, "Escalate complaints near their SLA", 0.05),
    "weeklyDigest": ("0 8 * * 1", Priority.LOW, "Send the weekly digest", 0.1),
    "monthlyComplianceReport": ("0 9 1 * *", Priority.HIGH, "Build the compliance report", 0.1),
    "retryFailedEmails": ("0 */2 * * *", Priority.NORMAL, "Retry emails that bounced", 0.3),
    "checkIncompleteOnboarding": (
        "30 9 * * *",
        Priority.NORMAL,
        "Chase incomplete onboarding",
        0.05,
    ),
}


def _simulated(name: str, failure_rate: float) -> Callable[[JobContext], Awaitable[None]]:
    async def handler(ctx: JobContext) -> None:
        await asyncio.sleep(random.uniform(0.1, 2.5))  # noqa: S311 - a demo, not security
        if random.random() < failure_rate:  # noqa: S311
            raise RuntimeError(f"{name}: upstream service answered 503 (simulated)")
        ctx.logger.info("%s done (run %s, attempt %d)", name, ctx.run_id, ctx.attempt)

    handler.__name__ = name
    return handler


for _name, (_expression, _priority, _description, _failure) in JOBS.items():
    hub.job(
        _name,
        description=_description,
        priority=_priority,
        retry=RetryPolicy(max_retries=3, base_delay=timedelta(seconds=2)),
        timeout=timedelta(seconds=30),
        schedules=[Cron(_expression, SYDNEY)],
    )(_simulated(_name, _failure))
