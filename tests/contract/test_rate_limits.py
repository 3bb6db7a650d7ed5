"""Rate limits on every backend: a claim starts runs only within a job's rate (per job, or
per payload key), counted in a sliding window; the others are delayed until the window has
room, attempt unchanged, and check again then."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from hub_scheduler.domain.limits import JobLimits, RateLimit
from hub_scheduler.domain.model import RunState
from hub_scheduler.domain.ports import EnqueueRequest
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)


async def _enqueue(backend: Subject, *payloads: Mapping[str, object]) -> list[str]:
    answers = await backend.queue.enqueue([EnqueueRequest("sync", p) for p in payloads])
    return [answer.run_id for answer in answers]


async def _claimed(backend: Subject) -> list[str]:
    return [c.run.id for c in await backend.queue.claim("w1", 10, LEASE)]


async def test_a_burst_starts_at_the_rate_and_the_rest_waits_for_the_window(
    backend: Subject,
) -> None:
    """3/min: three start at once; the rest are delayed a minute (when the window has room),
    still on attempt 1; then three more start and the last waits another minute."""
    await backend.queue.set_limits({"sync": JobLimits(rate=RateLimit.parse("3/min"))})
    start = backend.clock.now()
    ids = await _enqueue(backend, *[{"n": n} for n in range(7)])
    assert await _claimed(backend) == ids[:3]
    minute = timedelta(minutes=1)
    delayed = [await backend.history.get(run_id) for run_id in ids[3:]]
    assert {(r.state, r.run_at, r.attempt) for r in delayed} == {
        (RunState.DELAYED, start + minute, 1)
    }
    assert (await backend.queue.snapshot()).delayed == 4
    backend.clock.advance(timedelta(seconds=59))
    assert await _claimed(backend) == []
    backend.clock.advance(timedelta(seconds=1))
    second_wave = await _claimed(backend)
    assert len(second_wave) == 3
    [last] = set(ids[3:]) - set(second_wave)
    assert (await backend.history.get(last)).run_at == start + 2 * minute
    backend.clock.advance(minute)
    assert await _claimed(backend) == [last]


async def test_starts_count_when_they_happen(backend: Subject) -> None:
    """A run that waited starts when the window has room at the moment it is claimed: a late
    claim is counted then, so the next run waits a window after it."""
    await backend.queue.set_limits({"sync": JobLimits(rate=RateLimit.parse("1/10s"))})
    start = backend.clock.now()
    first, second = await _enqueue(backend, {}, {})
    assert await _claimed(backend) == [first]
    backend.clock.advance(timedelta(seconds=25))  # the worker claims late
    assert await _claimed(backend) == [second]
    [third] = await _enqueue(backend, {})
    assert await _claimed(backend) == []
    assert (await backend.history.get(third)).run_at == start + timedelta(seconds=35)


async def test_a_keyed_rate_limits_each_tenant_on_its_own(backend: Subject) -> None:
    """1/min per tenant: one burst does not hold back another tenant; runs without the field
    share one key."""
    limit = RateLimit.parse("1/min", key="tenant")
    await backend.queue.set_limits({"sync": JobLimits(rate=limit)})
    a1, a2, b1, n1, n2 = await _enqueue(
        backend, {"tenant": "acme"}, {"tenant": "acme"}, {"tenant": 42}, {}, {}
    )
    assert sorted(await _claimed(backend)) == sorted([a1, b1, n1])
    assert [(await backend.history.get(i)).state for i in (a2, n2)] == [RunState.DELAYED] * 2
    backend.clock.advance(timedelta(minutes=1))
    assert sorted(await _claimed(backend)) == sorted([a2, n2])


async def test_a_removed_rate_lets_new_runs_start_at_once(backend: Subject) -> None:
    """Declared without a rate again, the job's new runs start at once."""
    await backend.queue.set_limits({"sync": JobLimits(rate=RateLimit.parse("1/h"))})
    await _enqueue(backend, {})
    assert len(await _claimed(backend)) == 1
    await backend.queue.set_limits({"sync": JobLimits()})
    ids = await _enqueue(backend, {}, {})
    assert await _claimed(backend) == ids


async def test_rate_and_max_running_together(backend: Subject) -> None:
    """A run held for max_running takes no rate slot while it waits."""
    limits = JobLimits(max_running=1, rate=RateLimit.parse("2/min"))
    await backend.queue.set_limits({"sync": limits})
    first, second, third = await _enqueue(backend, {}, {}, {})
    [claim] = await backend.queue.claim("w1", 10, LEASE)
    assert claim.run.id == first
    backend.clock.advance(timedelta(seconds=1))
    await backend.queue.settle_cancelled(claim)
    assert await _claimed(backend) == [second]
    assert (await backend.history.get(third)).state is RunState.QUEUED
