"""The schedule store on memory:// and real Redis: CRUD, restarts, compare-and-advance."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import Cron, Every, Hub, InvalidScheduleError, Schedule, SlotOutcome
from hub_scheduler.domain.errors import ScheduleNotFoundError
from hub_scheduler.domain.ports import EnqueueRequest
from hub_scheduler.domain.schedule import SlotDecision
from hub_scheduler.testing import FakeClock

T0 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "redis"])
async def url(request: pytest.FixtureRequest) -> str:
    """Where the hubs of a test live."""
    return str(request.getfixturevalue("redis_url")) if request.param == "redis" else "memory://"


@pytest.fixture
async def hub(url: str, key_prefix: str) -> AsyncIterator[Hub]:
    """A hub with a fake clock and its own key prefix (keys removed afterwards)."""
    async with Hub(url, prefix=key_prefix.replace(":", "-"), clock=FakeClock(T0)) as hub:
        yield hub
        keys = [k async for k in hub.client.scan_iter(match=hub.store.keys.base + "*")]
        if keys:
            await hub.client.delete(*keys)


@contextlib.asynccontextmanager
async def _restarted(hub: Hub) -> AsyncIterator[Hub]:
    """A new hub on the same store, as after a restart (memory:// shares the fake server)."""
    if hub.url == "memory://":
        other = Hub(prefix=hub.prefix, clock=hub.clock)
        await other.aclose()
        other.client = other.store.client = hub.client
        other.store.__attrs_post_init__()
        yield other
        return
    async with Hub(hub.url, prefix=hub.prefix, clock=hub.clock) as other:
        yield other


async def test_runtime_changes_survive_a_restart(hub: Hub) -> None:
    """Created, edited, paused and deleted schedules read back the same from a new process."""
    hub.job("report", schedules=[Cron("0 8 * * *")])(lambda _: None)
    hub.job("adhoc")(lambda _: None)
    await hub.sync_schedules()
    now = hub.clock.now()
    await hub.schedules.create(Schedule(Every(timedelta(minutes=5)), job="adhoc", id="a"), now)
    await hub.schedules.create(Schedule(Cron("0 * * * *"), job="adhoc", id="b"), now)
    await hub.schedules.update(Schedule(Cron("30 * * * *"), job="adhoc", id="b"), now)
    await hub.schedules.set_paused("report:0", paused=True)
    await hub.schedules.create(Schedule(Cron("@daily"), job="adhoc", id="gone"), now)
    await hub.schedules.delete("gone")

    async with _restarted(hub) as again:
        again.job("report", schedules=[Cron("0 8 * * *")])(lambda _: None)
        await again.sync_schedules()  # code declares the same schedule: runtime state is kept
        states = {s.schedule.id: s for s in await again.schedules.list()}
        with pytest.raises(ScheduleNotFoundError):
            await again.schedules.get("gone")
    assert sorted(states) == ["a", "b", "report:0"]
    assert states["report:0"].paused
    assert states["report:0"].declared
    assert not states["a"].declared
    assert states["b"].schedule.trigger == Cron("30 * * * *")
    assert states["b"].next_fire == T0 + timedelta(minutes=30)


async def test_declared_schedule_removed_from_code_is_deleted(hub: Hub) -> None:
    """A schedule no longer declared in code disappears on the next sync; runtime ones stay."""
    hub.job("report", schedules=[Cron("0 8 * * *"), Cron("0 9 * * *")])(lambda _: None)
    await hub.sync_schedules()
    await hub.schedules.create(Schedule(Cron("@hourly"), job="report", id="mine"), T0)
    async with _restarted(hub) as fewer:
        fewer.job("report", schedules=[Cron("0 8 * * *")])(lambda _: None)
        await fewer.sync_schedules()
        assert [s.schedule.id for s in await fewer.schedules.list()] == ["mine", "report:0"]


async def test_duplicate_and_missing_ids_are_refused(hub: Hub) -> None:
    """Creating an existing id or editing a missing one raises a clear error."""
    schedule = Schedule(Cron("@daily"), job="x", id="s1")
    await hub.schedules.create(schedule, T0)
    with pytest.raises(InvalidScheduleError, match="already exists"):
        await hub.schedules.create(schedule, T0)
    with pytest.raises(ScheduleNotFoundError):
        await hub.schedules.update(Schedule(Cron("@daily"), job="x", id="nope"), T0)
    with pytest.raises(ScheduleNotFoundError):
        await hub.schedules.set_paused("nope", paused=True)


async def test_fire_is_compare_and_advance(hub: Hub) -> None:
    """Two schedulers fire the same slot from the same state: one enqueues, the other is refused."""
    state = await hub.schedules.create(Schedule(Every(timedelta(minutes=1)), job="x", id="s"), T0)
    assert state.next_fire is not None
    slot = state.next_fire
    decisions = [SlotDecision(slot, SlotOutcome.ENQUEUED)]
    request = EnqueueRequest("x", schedule_id="s", slot=slot)
    following = slot + timedelta(minutes=1)
    first = await hub.schedules.fire(state, decisions, [request], following, slot)
    second = await hub.schedules.fire(state, decisions, [request], following, slot)
    assert first is not None
    assert len(first) == 1
    assert second is None
    after = await hub.schedules.get("s")
    assert (after.runs, after.next_fire, after.last_fire) == (1, following, slot)
    [record] = (await hub.schedules.slots("s")).items
    assert (record.slot, record.outcome, record.run_id) == (
        slot,
        SlotOutcome.ENQUEUED,
        first[0].run_id,
    )
    assert (await hub.queue.snapshot()).waiting == 1
