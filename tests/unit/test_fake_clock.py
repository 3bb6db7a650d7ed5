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
