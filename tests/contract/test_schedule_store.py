"""The schedule store on every backend (fake, memory://, Redis): CRUD, restarts,
compare-and-advance."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Protocol

import attrs
import pytest

from hub_scheduler import Cron, Every, Hub, InvalidScheduleError, Schedule, SlotOutcome
from hub_scheduler.domain.errors import ScheduleNotFoundError
from hub_scheduler.domain.model import JobDefinition
from hub_scheduler.domain.ports import (
    Clock,
    EnqueueRequest,
    JobQueue,
    SchedulerInfo,
    ScheduleStore,
)
from hub_scheduler.domain.schedule import ScheduleTrigger, SlotDecision
from hub_scheduler.testing import FakeClock, FakeJobQueue, FakeScheduleStore, FakeStore

T0 = datetime(2026, 6, 1, tzinfo=UTC)


class SchedulesBackend(Protocol):
    """A schedule store and the queue it fires into, as one process of an application sees
    them, with the jobs that process declares in code."""

    @property
    def schedules(self) -> ScheduleStore:
        """The schedule store."""
        ...

    @property
    def queue(self) -> JobQueue:
        """The queue fired runs join."""
        ...

    @property
    def clock(self) -> Clock:
        """A fake clock, starting at `T0`."""
        ...

    def declare(self, job: str, schedules: Sequence[ScheduleTrigger]) -> None:
        """Declare `job` in code with these schedules (bound as ``"<job>:<index>"``)."""
        ...

    async def sync(self) -> None:
        """Upsert the schedules declared so far, as a process does when it starts."""
        ...

    def restarted(self) -> AbstractAsyncContextManager[SchedulesBackend]:
        """A new process on the same store, with nothing declared yet."""
        ...


@attrs.frozen
class HubBackend:
    """A `Hub` on memory:// or Redis."""

    hub: Hub

    @property
    def schedules(self) -> ScheduleStore:
        """The hub's schedule store."""
        return self.hub.schedules

    @property
    def queue(self) -> JobQueue:
        """The hub's queue."""
        return self.hub.queue

    @property
    def clock(self) -> Clock:
        """The hub's clock."""
        return self.hub.clock

    def declare(self, job: str, schedules: Sequence[ScheduleTrigger]) -> None:
        """Register `job` on the hub."""
        self.hub.job(job, schedules=schedules)(lambda _: None)

    async def sync(self) -> None:
        """`Hub.sync_schedules`."""
        await self.hub.sync_schedules()

    @contextlib.asynccontextmanager
    async def restarted(self) -> AsyncIterator[SchedulesBackend]:
        """A new hub on the same store, as after a restart (memory:// shares the fake server)."""
        hub = self.hub
        if hub.url == "memory://":
            other = Hub(prefix=hub.prefix, clock=hub.clock)
            await other.aclose()
            other.client = other.store.client = hub.client
            other.store.__attrs_post_init__()
            yield HubBackend(other)
            return
        async with Hub(hub.url, prefix=hub.prefix, clock=hub.clock) as other:
            yield HubBackend(other)


@attrs.frozen
class FakeBackend:
    """A `FakeScheduleStore` firing into a `FakeJobQueue`."""

    schedules: FakeScheduleStore
    clock: FakeClock
    declared: list[Schedule] = attrs.field(factory=list)

    @property
    def queue(self) -> FakeJobQueue:
        """The queue the store fires into."""
        return self.schedules.queue

    def declare(self, job: str, schedules: Sequence[ScheduleTrigger]) -> None:
        """Remember the schedules of `job`, bound as a `Hub` binds them."""
        self.declared.extend(JobDefinition(job, schedules=tuple(schedules)).schedules)

    async def sync(self) -> None:
        """Upsert what was declared, at the clock's now."""
        await self.schedules.sync_declared(self.declared, self.clock.now())

    @contextlib.asynccontextmanager
    async def restarted(self) -> AsyncIterator[SchedulesBackend]:
        """New fakes over the same `FakeStore`."""
        queue = FakeJobQueue(self.queue.store)
        yield FakeBackend(FakeScheduleStore(queue, self.schedules.retention), self.clock)


@pytest.fixture(params=["fake", "memory", "redis"])
async def backend(
    request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[SchedulesBackend]:
    """The schedule store on each backend, with a fake clock at `T0` and its own key prefix
    (keys removed afterwards)."""
    if request.param == "fake":
        clock = FakeClock(T0)
        yield FakeBackend(FakeScheduleStore(FakeJobQueue(FakeStore(clock))), clock)
        return
    url = str(request.getfixturevalue("redis_url")) if request.param == "redis" else "memory://"
    async with Hub(url, prefix=key_prefix.replace(":", "-"), clock=FakeClock(T0)) as hub:
        yield HubBackend(hub)
        keys = [k async for k in hub.client.scan_iter(match=hub.store.keys.base + "*")]
        if keys:
            await hub.client.delete(*keys)


async def test_runtime_changes_survive_a_restart(backend: SchedulesBackend) -> None:
    """Created, edited, paused and deleted schedules read back the same from a new process."""
    backend.declare("report", [Cron("0 8 * * *")])
    backend.declare("adhoc", [])
    await backend.sync()
    now = backend.clock.now()
    await backend.schedules.create(Schedule(Every(timedelta(minutes=5)), job="adhoc", id="a"), now)
    await backend.schedules.create(Schedule(Cron("0 * * * *"), job="adhoc", id="b"), now)
    await backend.schedules.update(Schedule(Cron("30 * * * *"), job="adhoc", id="b"), now)
    await backend.schedules.set_paused("report:0", paused=True)
    await backend.schedules.create(Schedule(Cron("@daily"), job="adhoc", id="gone"), now)
    await backend.schedules.delete("gone")

    async with backend.restarted() as again:
        again.declare("report", [Cron("0 8 * * *")])
        await again.sync()  # code declares the same schedule: runtime state is kept
        states = {s.schedule.id: s for s in await again.schedules.list()}
        with pytest.raises(ScheduleNotFoundError):
            await again.schedules.get("gone")
    assert sorted(states) == ["a", "b", "report:0"]
    assert states["report:0"].paused
    assert states["report:0"].declared
    assert not states["a"].declared
    assert states["b"].schedule.trigger == Cron("30 * * * *")
    assert states["b"].next_fire == T0 + timedelta(minutes=30)


async def test_declared_schedule_removed_from_code_is_deleted(backend: SchedulesBackend) -> None:
    """A schedule no longer declared in code disappears on the next sync; runtime ones stay."""
    backend.declare("report", [Cron("0 8 * * *"), Cron("0 9 * * *")])
    await backend.sync()
    await backend.schedules.create(Schedule(Cron("@hourly"), job="report", id="mine"), T0)
    async with backend.restarted() as fewer:
        fewer.declare("report", [Cron("0 8 * * *")])
        await fewer.sync()
        assert [s.schedule.id for s in await fewer.schedules.list()] == ["mine", "report:0"]


async def test_duplicate_and_missing_ids_are_refused(backend: SchedulesBackend) -> None:
    """Creating an existing id or editing a missing one raises a clear error."""
    schedule = Schedule(Cron("@daily"), job="x", id="s1")
    await backend.schedules.create(schedule, T0)
    with pytest.raises(InvalidScheduleError, match="already exists"):
        await backend.schedules.create(schedule, T0)
    with pytest.raises(ScheduleNotFoundError):
        await backend.schedules.update(Schedule(Cron("@daily"), job="x", id="nope"), T0)
    with pytest.raises(ScheduleNotFoundError):
        await backend.schedules.set_paused("nope", paused=True)


async def test_fire_is_compare_and_advance(backend: SchedulesBackend) -> None:
    """Two schedulers fire the same slot from the same state: one enqueues, the other is refused."""
    state = await backend.schedules.create(
        Schedule(Every(timedelta(minutes=1)), job="x", id="s"), T0
    )
    assert state.next_fire is not None
    slot = state.next_fire
    decisions = [SlotDecision(slot, SlotOutcome.ENQUEUED)]
    request = EnqueueRequest("x", schedule_id="s", slot=slot)
    following = slot + timedelta(minutes=1)
    first = await backend.schedules.fire(state, decisions, [request], following, slot)
    second = await backend.schedules.fire(state, decisions, [request], following, slot)
    assert first is not None
    assert len(first) == 1
    assert second is None
    after = await backend.schedules.get("s")
    assert (after.runs, after.next_fire, after.last_fire) == (1, following, slot)
    [record] = (await backend.schedules.slots("s")).items
    assert (record.slot, record.outcome, record.run_id) == (
        slot,
        SlotOutcome.ENQUEUED,
        first[0].run_id,
    )
    assert (await backend.queue.snapshot()).waiting == 1


async def test_scheduler_heartbeats_expire(backend: SchedulesBackend) -> None:
    """A scheduler's report shows it live until its ttl passes."""
    now = backend.clock.now()
    info = SchedulerInfo("s1", now, timedelta(milliseconds=3), timedelta(milliseconds=20))
    await backend.schedules.heartbeat(info, timedelta(seconds=15))
    [live] = await backend.schedules.schedulers(now + timedelta(seconds=14))
    assert (live.id, live.lateness_p99) == ("s1", timedelta(milliseconds=20))
    assert list(await backend.schedules.schedulers(now + timedelta(seconds=16))) == []
