"""The schedule store on every backend: CRUD, restarts, compare-and-advance, the ledger."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hub_scheduler import Cron, Every, Schedule, SlotOutcome
from hub_scheduler.domain.errors import ScheduleExistsError, ScheduleNotFoundError
from hub_scheduler.domain.model import JobDefinition
from hub_scheduler.domain.ports import EnqueueRequest, PlannedFire, ScheduleState, fire_each
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.schedule import SlotDecision
from hub_scheduler.runtime.scheduler import Scheduler
from tests.contract.conftest import START, Subject

T0 = START


async def _noop(ctx: object) -> None:
    del ctx


async def test_runtime_changes_survive_a_restart(backend: Subject) -> None:
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


async def test_declared_schedule_removed_from_code_is_deleted(backend: Subject) -> None:
    """A schedule no longer declared in code disappears on the next sync; runtime ones stay."""
    backend.declare("report", [Cron("0 8 * * *"), Cron("0 9 * * *")])
    await backend.sync()
    await backend.schedules.create(Schedule(Cron("@hourly"), job="report", id="mine"), T0)
    async with backend.restarted() as fewer:
        fewer.declare("report", [Cron("0 8 * * *")])
        await fewer.sync()
        assert [s.schedule.id for s in await fewer.schedules.list()] == ["mine", "report:0"]


async def test_duplicate_and_missing_ids_are_refused(backend: Subject) -> None:
    """Creating an existing id or editing a missing one raises a clear error."""
    schedule = Schedule(Cron("@daily"), job="x", id="s1")
    await backend.schedules.create(schedule, T0)
    with pytest.raises(ScheduleExistsError, match="already exists"):
        await backend.schedules.create(schedule, T0)
    with pytest.raises(ScheduleNotFoundError):
        await backend.schedules.update(Schedule(Cron("@daily"), job="x", id="nope"), T0)
    with pytest.raises(ScheduleNotFoundError):
        await backend.schedules.set_paused("nope", paused=True)


async def test_fire_is_compare_and_advance(backend: Subject) -> None:
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


async def test_due_and_next_due_follow_the_earliest_fire(backend: Subject) -> None:
    """next_due_at is the earliest next fire; due lists what is due by then, earliest first."""
    schedules = backend.schedules
    await schedules.create(Schedule(Every(timedelta(minutes=10)), job="x", id="ten"), T0)
    await schedules.create(Schedule(Cron("*/5 * * * *"), job="x", id="five"), T0)
    five = T0 + timedelta(minutes=5)
    assert (await schedules.next_due_at(), list(await schedules.due(T0))) == (five, [])
    due = await schedules.due(T0 + timedelta(minutes=10))
    assert [(s.schedule.id, s.next_fire) for s in due] == [
        ("five", five),
        ("ten", T0 + timedelta(minutes=10)),
    ]
    await schedules.delete("five")
    await schedules.delete("ten")
    assert await schedules.next_due_at() is None


async def test_a_deleted_schedule_keeps_its_ledger(backend: Subject) -> None:
    """After delete the schedule is gone, but what happened at its slots can still be read."""
    state = await backend.schedules.create(Schedule(Cron("@hourly"), job="x", id="h"), T0)
    assert state.next_fire is not None
    slot = state.next_fire
    decisions = [SlotDecision(slot, SlotOutcome.ENQUEUED)]
    request = EnqueueRequest("x", schedule_id="h", slot=slot)
    await backend.schedules.fire(state, decisions, [request], slot + timedelta(hours=1), slot)
    await backend.schedules.delete("h")
    with pytest.raises(ScheduleNotFoundError):
        await backend.schedules.get("h")
    [record] = (await backend.schedules.slots("h")).items
    assert (record.slot, record.outcome) == (slot, SlotOutcome.ENQUEUED)


def _planned(state: ScheduleState, minutes: int = 1) -> PlannedFire:
    """Fire the due slot of `state` (every `minutes`) and advance to the next one."""
    assert state.next_fire is not None
    slot = state.next_fire
    request = EnqueueRequest(state.schedule.job, schedule_id=state.schedule.id, slot=slot)
    decision = SlotDecision(slot, SlotOutcome.ENQUEUED)
    return PlannedFire(state, (decision,), (request,), slot + timedelta(minutes=minutes))


async def test_fire_many_is_a_compare_and_advance_per_schedule(backend: Subject) -> None:
    """A batch fires every schedule whose version still matches; a stale one is refused
    alone, and the same batch again changes nothing."""
    states = [
        await backend.schedules.create(
            Schedule(Every(timedelta(minutes=1)), job=job, id=f"s{i}"), T0
        )
        for i, job in enumerate(["a", "b", "c"])
    ]
    now = T0 + timedelta(minutes=1)
    stale = states[1]
    assert await backend.schedules.fire_many([_planned(stale)], now) != [None]
    batch = [_planned(s) for s in states]
    answers = list(await backend.schedules.fire_many(batch, now))
    assert [a is None for a in answers] == [False, True, False]
    assert [len(a or ()) for a in answers] == [1, 0, 1]
    assert list(await backend.schedules.fire_many(batch, now)) == [None, None, None]
    after = {s.schedule.id: s for s in await backend.schedules.list()}
    assert [after[f"s{i}"].runs for i in range(3)] == [1, 1, 1]
    assert {s.next_fire for s in after.values()} == {now + timedelta(minutes=1)}
    for i, answer in ((0, answers[0]), (2, answers[2])):
        [record] = (await backend.schedules.slots(f"s{i}")).items
        assert answer is not None
        assert (record.slot, record.run_id) == (now, answer[0].run_id)
    assert (await backend.queue.snapshot()).waiting == 3
    assert list(await backend.schedules.fire_many([], now)) == []


async def test_claimed_schedules_are_handed_out_once_until_fired_or_the_lease_ends(
    backend: Subject,
) -> None:
    """Schedulers claiming at once get different due schedules; a fired one comes back at
    its next fire, an unfired one when its lease ends."""
    for i in range(3):
        await backend.schedules.create(
            Schedule(Every(timedelta(minutes=1)), job=f"j{i}", id=f"s{i}"), T0
        )
    now = T0 + timedelta(minutes=1)
    lease = timedelta(seconds=5)
    claims = []
    while claim := list(await backend.schedules.claim_due(now, 2, lease)):
        assert len(claim) <= 2
        claims.append(claim)
    ids = [s.schedule.id for claim in claims for s in claim]
    assert sorted(ids) == ["s0", "s1", "s2"]  # each handed out once
    assert await backend.schedules.next_due_at() == now + lease  # not before the claims end
    fired, kept = [s for c in claims for s in c if s.schedule.id != "s2"], "s2"
    await backend.schedules.fire_many([_planned(s) for s in fired], now)
    later = now + lease
    assert (
        list(await backend.schedules.claim_due(later - timedelta(milliseconds=1), 10, lease)) == []
    )
    back = await backend.schedules.claim_due(later, 10, lease)
    assert [(s.schedule.id, s.next_fire) for s in back] == [(kept, now)]  # still to fire
    due_again = await backend.schedules.claim_due(now + timedelta(minutes=1), 10, lease)
    assert sorted(s.schedule.id for s in due_again) == ["s0", "s1", "s2"]


async def test_fire_each_is_the_per_item_fallback_of_fire_many(backend: Subject) -> None:
    """`fire_each` (for a store without a batched fire) answers as `fire_many` does."""
    states = [
        await backend.schedules.create(Schedule(Every(timedelta(minutes=1)), job="a", id=i), T0)
        for i in ("p", "q")
    ]
    now = T0 + timedelta(minutes=1)
    batch = [_planned(s) for s in states]
    first = await fire_each(backend.schedules, batch[:1], now)
    answers = await fire_each(backend.schedules, batch, now)
    assert first[0] is not None
    assert answers[0] is None
    assert answers[1] is not None
    assert [s.runs for s in await backend.schedules.list()] == [1, 1]


async def test_slots_fired_ahead_become_ready_on_their_instant_once(backend: Subject) -> None:
    """A scheduler with a lookahead fires the slots due within it as runs delayed to their
    slots: nothing is claimable before the instant, each run is claimable on it, and two
    replicas firing ahead together still make one run per slot."""
    backend.declare("tick", [Every(timedelta(seconds=10))])
    await backend.sync()
    registry = Registry()
    registry.add(JobDefinition("tick"), _noop)
    replicas = [
        Scheduler(backend.schedules, backend.presence, registry, backend.clock,
                  lookahead=timedelta(seconds=25))
        for _ in range(2)
    ]  # fmt: skip
    backend.clock.advance(timedelta(seconds=1))
    fired = sum(await asyncio.gather(*(replica.tick() for replica in replicas)))

    assert fired == 2  # the slots at +10 s and +20 s; +30 s lies beyond the lookahead
    assert await backend.queue.claim("w", 10, timedelta(seconds=30)) == []
    backend.clock.set(T0 + timedelta(seconds=10))
    [first] = await backend.queue.claim("w", 10, timedelta(seconds=30))
    assert first.run.slot == T0 + timedelta(seconds=10)
    backend.clock.set(T0 + timedelta(seconds=20))
    [second] = await backend.queue.claim("w", 10, timedelta(seconds=30))
    assert second.run.slot == T0 + timedelta(seconds=20)
    [state] = await backend.schedules.list()
    assert state.next_fire == T0 + timedelta(seconds=30)
    assert all(max(replica.lateness, default=0.0) == 0.0 for replica in replicas)
