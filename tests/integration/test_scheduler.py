"""The scheduler on memory:// with a fake clock: exactly once, DST, misfires, pause, ledger."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import Cron, Every, Hub, MisfirePolicy, Run, Schedule, SlotOutcome
from hub_scheduler.adapters.redis.schedules import RedisScheduleStore
from hub_scheduler.demo import JOBS, SYDNEY
from hub_scheduler.domain.ports import Enqueued, PlannedFire
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.testing import FakeClock

#: The reference deployment's schedules (the demo app declares the same 11).
REFERENCE = {name: expression for name, (expression, *_) in JOBS.items()}


async def _noop(ctx: JobContext) -> None:
    del ctx


async def _all_runs(hub: Hub) -> list[Run]:
    runs: list[Run] = []
    cursor = None
    while True:
        page = await hub.history.list(cursor=cursor, limit=500)
        runs.extend(page.items)
        if page.next_cursor is None:
            return runs
        cursor = page.next_cursor


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 9, tzinfo=UTC)),  # clocks go back
        (datetime(2026, 9, 30, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)),  # forward
    ],
)
async def test_three_replicas_fire_each_reference_slot_exactly_once(
    start: datetime, end: datetime
) -> None:
    """Three schedulers racing over a DST week enqueue every Sydney slot once, none twice."""
    clock = FakeClock(start)
    async with Hub(clock=clock) as hub:
        for name, expression in REFERENCE.items():
            hub.job(name, schedules=[Cron(expression, SYDNEY)])(_noop)
        await hub.sync_schedules()
        replicas = [hub.scheduler() for _ in range(3)]
        while (due := await hub.schedules.next_due_at()) is not None and due < end:
            clock.set(due)
            await asyncio.gather(*(replica.tick() for replica in replicas))
        runs = await _all_runs(hub)

    per_slot = Counter((run.schedule_id, run.slot) for run in runs)
    assert set(per_slot.values()) == {1}
    expected = {
        (f"{name}:0", slot)
        for name, expression in REFERENCE.items()
        for slot in Schedule(Cron(expression, SYDNEY)).due(start, end - timedelta(microseconds=1))
    }
    assert set(per_slot) == expected


async def _outage(policy: MisfirePolicy) -> tuple[list[SlotOutcome], int]:
    """A 10-minute schedule, then 3 hours with no scheduler: the outcomes and runs enqueued."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        hub.job("report", schedules=[Schedule(Every(timedelta(minutes=10)), misfire=policy)])(_noop)
        await hub.sync_schedules()
        clock.advance(timedelta(hours=3, minutes=5))
        enqueued = await hub.scheduler().tick()
        ledger = (await hub.schedules.slots("report:0", limit=100)).items
        return [record.outcome for record in reversed(ledger)], enqueued


async def test_misfire_skip_after_three_hour_outage() -> None:
    """skip: all 18 overdue slots are ledgered missed and nothing runs."""
    outcomes, enqueued = await _outage(MisfirePolicy.skip())
    assert (outcomes, enqueued) == ([SlotOutcome.MISSED] * 18, 0)


async def test_misfire_run_once_after_three_hour_outage() -> None:
    """run_once: one late run for the newest slot; the 17 before it are coalesced."""
    outcomes, enqueued = await _outage(MisfirePolicy.run_once())
    assert (outcomes, enqueued) == ([SlotOutcome.COALESCED] * 17 + [SlotOutcome.LATE], 1)


async def test_misfire_catch_up_after_three_hour_outage() -> None:
    """catch_up(2): the two newest slots run late; the older 16 are missed."""
    outcomes, enqueued = await _outage(MisfirePolicy.catch_up(2))
    assert (outcomes, enqueued) == ([SlotOutcome.MISSED] * 16 + [SlotOutcome.LATE] * 2, 2)


async def test_paused_schedule_and_job_ledger_paused_then_resume() -> None:
    """Paused schedule or paused job: slots are ledgered paused; resume fires the next slot."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        hub.job("beat", schedules=[Every(timedelta(minutes=1))])(_noop)
        await hub.sync_schedules()
        scheduler = hub.scheduler()

        async def minute() -> None:
            clock.advance(60)
            await scheduler.tick()

        await minute()
        await hub.schedules.set_paused("beat:0", paused=True)
        await minute()
        await hub.schedules.set_paused("beat:0", paused=False)
        await hub.queue.pause("beat")
        await minute()
        await hub.queue.resume("beat")
        await minute()
        ledger = [r.outcome for r in reversed((await hub.schedules.slots("beat:0")).items)]
        state = await hub.schedules.get("beat:0")
    assert ledger == [
        SlotOutcome.ENQUEUED,
        SlotOutcome.PAUSED,
        SlotOutcome.PAUSED,
        SlotOutcome.ENQUEUED,
    ]
    assert (state.runs, state.last_outcome) == (2, SlotOutcome.ENQUEUED)


async def test_scheduled_run_carries_schedule_slot_and_job_priority() -> None:
    """A fired run names its schedule and slot, and takes its job's priority and payload."""
    clock = FakeClock(datetime(2026, 6, 1, 7, 59, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        schedule = Schedule(Cron("0 8 * * *"), payload={"tenant": "acme"})
        hub.job("digest", priority="high", schedules=[schedule])(_noop)
        await hub.sync_schedules()
        clock.advance(60)
        assert await hub.scheduler().tick() == 1
        [run] = (await hub.history.list()).items
    assert (run.schedule_id, run.slot, run.priority, run.payload, run.trigger.value) == (
        "digest:0",
        datetime(2026, 6, 1, 8, tzinfo=UTC),
        5,
        {"tenant": "acme"},
        "schedule",
    )


async def test_scheduler_loop_sleeps_until_due_and_wakes_on_changes() -> None:
    """The loop fires at the due instant of the fake clock, and re-plans on a new schedule."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        hub.job("later", schedules=[Cron("0 1 * * *")])(_noop)
        hub.job("adhoc")(_noop)
        async with hub.scheduling(max_sleep=3600) as scheduler:
            async with asyncio.timeout(5):
                await clock.until_sleeping(1)
            clock.set(datetime(2026, 6, 1, 1, tzinfo=UTC))
            async with asyncio.timeout(5):
                while not scheduler.lateness:  # it fires, then goes back to sleep
                    await clock.next_sleep()
            await hub.schedules.create(
                Schedule(Every(timedelta(minutes=5)), job="adhoc", id="adhoc-5m"), clock.now()
            )
            async with asyncio.timeout(5):
                while (await hub.schedules.get("adhoc-5m")).runs == 0:
                    slept = clock.next_sleep()  # the loop wakes at least every 5 s to report
                    clock.advance(60)
                    await slept
        assert scheduler.lateness[0] == 0.0


async def test_running_scheduler_reports_itself_with_lateness() -> None:
    """A scheduler in its loop heartbeats: it is listed live, with its fire lateness."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        hub.job("beat", schedules=[Every(timedelta(minutes=1))])(_noop)
        async with hub.scheduling() as scheduler:
            async with asyncio.timeout(5):
                await clock.until_sleeping(1)
            clock.advance(60)  # the slot fires on time, then the loop reports
            async with asyncio.timeout(5):
                while True:
                    slept = clock.next_sleep()  # armed first: the loop may report meanwhile
                    live = await hub.presence.schedulers(clock.now())
                    if live and live[0].lateness_p99 is not None:
                        break
                    await slept
        assert [s.id for s in live] == [scheduler.id]
        assert live[0].lateness_p99 == timedelta(0)


async def test_a_running_scheduler_samples_queue_depth_once_a_minute() -> None:
    """A scheduler in its loop samples the queue for the depth chart at its heartbeat: runs
    waiting show in the hour's series, one point per minute however often it beats."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        hub.job("adhoc")(_noop)
        await hub.enqueue("adhoc")
        await hub.enqueue("adhoc")
        async with hub.scheduling():
            async with asyncio.timeout(5):
                while len(await hub.depth.series("1h", clock.now())) < 2:
                    slept = clock.next_sleep()
                    clock.advance(20)
                    await slept
        points = await hub.depth.series("1h", clock.now())
    assert [(p.at.minute, p.waiting) for p in points] == [(0, 2), (1, 2)]


async def test_month_long_outage_is_ledgered_in_bulk_then_planned_per_slot() -> None:
    """30 days down on a 1-minute schedule: the old slots are one bulk record (coalesced, as
    run_once merges them into its late run), the
    last hour is planned slot by slot (run_once: one late run, plus the on-time newest slot),
    and the schedule carries on."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        schedule = Schedule(Every(timedelta(minutes=1)), misfire=MisfirePolicy.run_once())
        hub.job("tick", schedules=[schedule])(_noop)
        await hub.sync_schedules()
        clock.advance(timedelta(days=30, seconds=30))
        assert await hub.scheduler().tick() == 2
        ledger = list(reversed((await hub.schedules.slots("tick:0", limit=100)).items))
        state = await hub.schedules.get("tick:0")
    bulk, *recent = ledger
    first_slot = datetime(2026, 6, 1, 0, 1, tzinfo=UTC)
    assert (bulk.outcome, bulk.slot) == (SlotOutcome.COALESCED, first_slot)
    assert bulk.count == 30 * 24 * 60 - 60
    late = [SlotOutcome.COALESCED] * 58 + [SlotOutcome.LATE]
    assert [r.outcome for r in recent] == [*late, SlotOutcome.ENQUEUED]
    assert state.next_fire == clock.now() + timedelta(seconds=30)


async def test_stop_takes_effect_between_batches_while_many_slots_are_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asked to stop while 500 schedules are due, the loop returns after the batch in hand:
    the other slots stay due for the next scheduler, none is half fired."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        for i in range(500):
            hub.job(f"j{i}", schedules=[Every(timedelta(minutes=1))])(_noop)
        await hub.sync_schedules()
        clock.advance(60)
        scheduler = hub.scheduler(batch=50)
        batches: list[int] = []
        fire_many = RedisScheduleStore.fire_many

        async def fire_then_stop(
            store: RedisScheduleStore, fires: Sequence[PlannedFire], now: datetime
        ) -> list[list[Enqueued] | None]:
            batches.append(len(fires))
            answers = await fire_many(store, fires, now)
            scheduler.stop()  # asked while the other 450 are still due
            return answers

        monkeypatch.setattr(RedisScheduleStore, "fire_many", fire_then_stop)
        async with asyncio.timeout(5):
            await scheduler.run()
        states = await hub.schedules.list()
    assert batches == [50]
    assert sorted(s.runs for s in states) == [0] * 450 + [1] * 50
    assert len(scheduler.lateness) == 50


async def test_replicas_share_the_due_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two schedulers ticking at once claim different batches: each schedule is planned and
    fired by one of them only (no race lost, no work done twice), and both fired some."""
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub(clock=clock) as hub:
        for i in range(200):
            hub.job(f"j{i}", schedules=[Every(timedelta(minutes=1))])(_noop)
        await hub.sync_schedules()
        clock.advance(60)
        handed: list[str] = []
        fire_many = RedisScheduleStore.fire_many

        async def counted(
            store: RedisScheduleStore, fires: Sequence[PlannedFire], now: datetime
        ) -> list[list[Enqueued] | None]:
            handed.extend(f.state.schedule.id for f in fires)
            return await fire_many(store, fires, now)

        monkeypatch.setattr(RedisScheduleStore, "fire_many", counted)
        replicas = [hub.scheduler(batch=20) for _ in range(2)]
        fired = await asyncio.gather(*(r.tick() for r in replicas))
        states = await hub.schedules.list()
    assert sorted(handed) == sorted(s.schedule.id for s in states)
    assert sum(fired) == 200
    assert min(fired) > 0
    assert {s.runs for s in states} == {1}
