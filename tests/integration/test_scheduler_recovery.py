"""The scheduler when the store loses its data: declared schedules are synced again and keep
firing, and a schedule nothing fires (the dead-man check) turns health degraded and is
alerted once per overdue episode. Memory with a fake clock, and real Redis (FLUSHALL, and a
restart of a Redis without persistence)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import Cron, Every, Hub, SlotOutcome
from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.domain.admin import QueueStatus
from hub_scheduler.domain.ports import OverdueSchedule, SchedulerInfo, WorkerInfo
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.testing import FakeClock, RecordingNotifier
from tests.conftest import redis_of
from tests.integration.redis_server import RedisServer

START = datetime(2026, 6, 1, tzinfo=UTC)


async def _noop(ctx: JobContext) -> None:
    del ctx


def _memory_hub() -> tuple[Hub, FakeClock, RecordingNotifier]:
    clock = FakeClock(START)
    notifier = RecordingNotifier()
    hub = Hub("memory://", clock=clock, notifier=notifier)
    hub.job("report", schedules=[Every(timedelta(minutes=10))])(_noop)
    return hub, clock, notifier


async def _alive(hub: Hub) -> None:
    """A live worker and scheduler, as far as health can tell."""
    now = hub.clock.now()
    await hub.presence.worker_seen(WorkerInfo("w1", "h", 1, 5, 0, now), timedelta(hours=1))
    await hub.presence.scheduler_seen(SchedulerInfo("s1", now), timedelta(hours=1))


async def test_declared_schedules_come_back_after_the_store_is_flushed() -> None:
    """After a FLUSHALL the running scheduler syncs its declared schedules again, and they
    fire at their next slot; health said degraded while they were missing."""
    hub, clock, _ = _memory_hub()
    async with hub:
        await hub.sync_schedules()
        scheduler = hub.scheduler()
        clock.set(START + timedelta(minutes=10))
        assert await scheduler.tick() == 1
        await redis_of(hub).flushall()
        await _alive(hub)
        health = await hub.admin.queue_health()
        assert (health.status, health.missing_schedules) == (QueueStatus.DEGRADED, ("report:0",))
        assert await scheduler.check() == []  # it notices, and syncs them again
        assert [s.schedule.id for s in await hub.schedules.list()] == ["report:0"]
        assert (await hub.admin.queue_health()).status is QueueStatus.OK
        clock.set(START + timedelta(minutes=20))
        assert await scheduler.tick() == 1
        [record] = (await hub.schedules.slots("report:0")).items
        assert (record.slot, record.outcome) == (
            START + timedelta(minutes=20),
            SlotOutcome.ENQUEUED,
        )


async def test_an_unfired_schedule_degrades_health_and_alerts_once_per_episode() -> None:
    """A schedule whose due entry was lost is overdue past its grace: health is degraded and
    names it, the scheduler alerts once and fires it again; later checks stay quiet until
    it falls overdue anew."""
    hub, clock, notifier = _memory_hub()
    async with hub:
        await hub.sync_schedules()
        scheduler = hub.scheduler()
        backend = hub.backend
        assert isinstance(backend, RedisBackend)
        due_index = backend.store.keys.schedules_due
        await redis_of(hub).delete(due_index)  # partial loss: the state survives, not the index
        clock.set(START + timedelta(minutes=12))  # slot 00:10 is 2 min old: grace is 60 s
        await _alive(hub)
        assert await scheduler.tick() == 0  # the due index no longer names it
        health = await hub.admin.queue_health()
        assert (health.status, health.overdue_schedules) == (QueueStatus.DEGRADED, ("report:0",))
        [alert] = await scheduler.check()
        assert alert == OverdueSchedule(
            "report:0", "report", START + timedelta(minutes=10), timedelta(minutes=2)
        )
        assert notifier.overdue == [alert]
        assert (await hub.admin.queue_health()).status is QueueStatus.OK
        for minutes in (13, 20, 30):  # fired on time again: no alert
            clock.set(START + timedelta(minutes=minutes))
            await scheduler.tick()
            assert await scheduler.check() == []
        await redis_of(hub).delete(due_index)
        clock.set(START + timedelta(minutes=45))
        assert [a.slot for a in await scheduler.check()] == [START + timedelta(minutes=40)]
        assert await scheduler.check() == []
        assert len(notifier.overdue) == 2


class _Seen(logging.Handler):
    """Sets `event` when a record starting with `prefix` is logged."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.event.set()


async def test_startup_logs_each_schedule_and_the_count(caplog: pytest.LogCaptureFixture) -> None:
    """At start the scheduler logs "Scheduled: <job> (<trigger>) next fire <local time>" per
    schedule and "Job scheduler initialized (<n> schedules)"."""
    clock = FakeClock(START)
    async with Hub("memory://", clock=clock) as hub:
        hub.job("syncXero", schedules=[Cron("0 2 * * *", "Australia/Sydney")])(_noop)
        hub.job("report", schedules=[Every(timedelta(minutes=15))])(_noop)
        caplog.set_level(logging.INFO, logger="hub_scheduler.scheduler")
        initialized = _Seen("Job scheduler initialized")
        logging.getLogger("hub_scheduler.scheduler").addHandler(initialized)
        try:
            async with hub.scheduling():
                await asyncio.wait_for(initialized.event.wait(), 10)
        finally:
            logging.getLogger("hub_scheduler.scheduler").removeHandler(initialized)
    lines = [r.getMessage() for r in caplog.records if r.name == "hub_scheduler.scheduler"]
    assert lines[:3] == [
        "Scheduled: report (every 15 minutes) next fire 2026-06-01 00:15 UTC (UTC)",
        "Scheduled: syncXero (cron '0 2 * * *' Australia/Sydney) next fire "
        "2026-06-02 02:00 AEST (+1000)",
        "Job scheduler initialized (2 schedules)",
    ]
    first = next(r for r in caplog.records if r.getMessage().startswith("Scheduled: syncXero"))
    assert (first.job, first.schedule_id, first.timezone) == (  # type: ignore[attr-defined]
        "syncXero",
        "syncXero:0",
        "Australia/Sydney",
    )


# --- real Redis --------------------------------------------------------------------------


async def _fires_again_after(server: RedisServer, lose: str) -> None:
    """A 1-second declared schedule runs, the store loses everything, and it runs again."""
    async with Hub(server.url) as hub:
        ran = asyncio.Event()

        @hub.job("tick", schedules=[Every(timedelta(seconds=1))])
        async def tick(ctx: JobContext) -> None:
            del ctx
            ran.set()

        fast = timedelta(milliseconds=200)
        async with hub.scheduling(heartbeat_every=fast), hub.worker():
            await asyncio.wait_for(ran.wait(), 30)
            if lose == "flushall":
                await redis_of(hub).flushall()  # a private server: nobody else's keys
            else:
                await server.restart()
            ran.clear()
            await asyncio.wait_for(ran.wait(), 30)
        assert [s.schedule.id for s in await hub.schedules.list()] == ["tick:0"]


@pytest.mark.redis
async def test_declared_schedule_fires_again_after_flushall(volatile_redis: RedisServer) -> None:
    """On real Redis, a FLUSHALL under a running scheduler does not stop its schedules."""
    await _fires_again_after(volatile_redis, "flushall")


@pytest.mark.redis
async def test_declared_schedule_fires_again_after_a_restart_without_persistence(
    volatile_redis: RedisServer,
) -> None:
    """A Redis without persistence restarting empty does not stop the schedules either."""
    await _fires_again_after(volatile_redis, "restart")
