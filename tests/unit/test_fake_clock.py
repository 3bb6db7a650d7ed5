"""FakeClock: time moves only when a test moves it, and sleepers wake on time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler.testing import FakeClock

T0 = datetime(2026, 4, 4, 15, 0, tzinfo=UTC)


async def test_sleeper_wakes_only_when_time_reaches_its_deadline() -> None:
    """A task sleeping 10 s stays asleep after +9 s and wakes after +1 s more."""
    clock = FakeClock(T0)
    woke: list[datetime] = []

    async def sleeper() -> None:
        await clock.sleep(10)
        woke.append(clock.now())

    task = asyncio.create_task(sleeper())
    async with asyncio.timeout(1):
        await clock.until_sleeping(1)
    clock.advance(9)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(timedelta(seconds=1))
    async with asyncio.timeout(1):
        await task
    assert woke == [T0 + timedelta(seconds=10)]
    assert clock.sleepers == 0


async def test_cancelled_sleeper_is_forgotten() -> None:
    """Cancelling a sleeping task removes it from the clock's sleepers."""
    clock = FakeClock(T0)
    task = asyncio.create_task(clock.sleep(5))
    async with asyncio.timeout(1):
        await clock.until_sleeping(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0


def test_time_never_goes_back() -> None:
    """Moving the clock backwards is refused."""
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    assert clock.now() == T0


async def test_next_sleep_fires_when_a_task_starts_sleeping() -> None:
    """next_sleep completes when some task next sleeps; next_deadline is the earliest wake."""
    clock = FakeClock(T0)
    assert [clock.next_deadline] == [None]  # (a list: mypy would narrow the property)
    started = clock.next_sleep()
    late = asyncio.create_task(clock.sleep(60))
    soon = asyncio.create_task(clock.sleep(5))
    async with asyncio.timeout(1):
        await started
        await clock.until_sleeping(2)
    assert clock.next_deadline == T0 + timedelta(seconds=5)
    clock.advance(5)
    async with asyncio.timeout(1):
        await soon
    assert (clock.next_deadline, late.done()) == (T0 + timedelta(seconds=60), False)
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late


async def test_until_sleeping_serves_several_waiters() -> None:
    """Two tasks waiting for sleepers at once are both released (neither steals the signal)."""
    clock = FakeClock(T0)
    one = asyncio.create_task(clock.until_sleeping(1))
    two = asyncio.create_task(clock.until_sleeping(1))
    await asyncio.sleep(0)  # both start waiting before anyone sleeps
    sleeper = asyncio.create_task(clock.sleep(1))
    async with asyncio.timeout(1):
        await asyncio.gather(one, two)
    clock.advance(1)
    async with asyncio.timeout(1):
        await sleeper
