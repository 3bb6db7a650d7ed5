"""The other schedule labels, and `HubScheduleSource` for teams that keep `taskiq scheduler`:
the hub's scheduler fires every kind of schedule, once per slot, and taskiq sends nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hub_scheduler import Every, Hub, JobContext, Once, RunState
from hub_scheduler.taskiq import HubBroker, HubScheduleSource
from hub_scheduler.testing import FakeClock, advance_to_next_fire

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


async def test_interval_and_time_labels_become_every_and_once() -> None:
    """``interval`` (seconds or a timedelta) and ``time`` labels are hub schedules that fire
    on the fake clock like any other, with the label's args."""
    clock = FakeClock(START)
    async with Hub("memory://", clock=clock) as hub:
        broker = HubBroker(hub)
        at = START + timedelta(minutes=30)

        @broker.task(
            task_name="sweep",
            schedule=[{"interval": 600, "args": [1]}, {"time": at, "args": [2]}],
        )
        async def sweep(n: int) -> None:
            del n

        triggers = [s.trigger for s in hub.registry.get("sweep").definition.schedules]
        assert triggers == [Every(timedelta(seconds=600)), Once(at)]
        fired = [await advance_to_next_fire(hub) for _ in range(4)]
        runs = [await hub.history.get(run_id) for batch in fired for run_id in batch]
        assert [(r.slot, r.payload["args"]) for r in runs] == [
            (datetime(2026, 6, 1, 8, 10, tzinfo=UTC), [1]),
            (datetime(2026, 6, 1, 8, 20, tzinfo=UTC), [1]),
            (at, [1]),
            (at, [2]),
            (datetime(2026, 6, 1, 8, 40, tzinfo=UTC), [1]),
        ]
        await broker.shutdown()


async def test_hub_schedule_source_runs_the_hubs_scheduler_and_sends_nothing() -> None:
    """Two `HubScheduleSource`s started as ``taskiq scheduler`` starts them: neither hands
    taskiq anything to send; the hub's scheduler they start (once) fires a schedule declared
    on a plain hub job, one run for the slot."""
    clock = FakeClock(START)
    async with Hub("memory://", clock=clock) as hub:
        broker = HubBroker(hub)

        @hub.job("report", schedules=[Every(timedelta(minutes=5))])
        async def report(ctx: JobContext) -> None:
            del ctx

        sources = [HubScheduleSource(broker) for _ in range(2)]
        try:
            for source in sources:
                await source.startup()  # the second finds the hub's scheduler running
                assert await source.get_schedules() == []
            async with asyncio.timeout(5):
                await clock.until_sleeping(1)  # the scheduler loop waits for the slot
            clock.advance(timedelta(minutes=5))
            async with asyncio.timeout(5):
                await clock.until_sleeping(1)  # it fired, then went back to sleep
            [run] = (await hub.history.list(job="report")).items
            assert (run.slot, run.state) == (START + timedelta(minutes=5), RunState.QUEUED)
        finally:
            await broker.shutdown()
