"""taskiq's documentation examples (getting started, scheduling) with one line changed: the
broker. Everything else is as the taskiq docs write it.

Run with ``taskiq worker tests.taskiq.example_app:broker`` and
``taskiq scheduler tests.taskiq.example_app:scheduler``.
"""

import asyncio
import os

from taskiq import TaskiqScheduler
from taskiq.schedule_sources import LabelScheduleSource

from hub_scheduler.taskiq import HubBroker

# The one line: it was `broker = ListQueueBroker("redis://localhost:6379")`.
broker = HubBroker(os.environ["HUB_URL"], prefix=os.environ["HUB_PREFIX"], lease=2)

scheduler = TaskiqScheduler(
    broker=broker,
    sources=[LabelScheduleSource(broker)],
)


@broker.task
async def add_one(value: int) -> int:
    """Add one."""
    return value + 1


@broker.task
async def best_task_ever() -> None:
    """Solve all problems in the world."""
    await asyncio.sleep(0.1)
    print("All problems are solved!")


@broker.task(schedule=[{"cron": "* * * * *", "args": [1]}])
async def heavy_task(value: int) -> int:
    """A scheduled task."""
    return value + 1
