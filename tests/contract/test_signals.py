"""Signals on every backend that has them: an enqueue or a resume wakes subscribers of
wake-ups, and a schedule change reaches subscribers of schedule changes.

A signal published before a subscription is in place may be lost (signals only save a poll),
so a test keeps poking until its subscriber hears one, checking for it each time with a
timeout; it never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from hub_scheduler.domain.ports import EnqueueRequest
from hub_scheduler.domain.schedule import Every, Schedule
from tests.contract.conftest import Subject

#: How long (real seconds) to wait for a signal after each poke, and for one at all.
PER_POKE = 0.05
AT_MOST = 10.0


async def _hear(subscription: AsyncIterator[bool], poke: Callable[[], Awaitable[object]]) -> None:
    """Poke until `subscription` yields a signal (True); `TimeoutError` if none comes."""
    listening = asyncio.ensure_future(anext(subscription))
    try:
        async with asyncio.timeout(AT_MOST):
            while True:
                await poke()
                done, _ = await asyncio.wait({listening}, timeout=PER_POKE)
                if done:
                    if listening.result():
                        return
                    listening = asyncio.ensure_future(anext(subscription))  # a quiet spell
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await listening
        closing = getattr(subscription, "aclose", None)
        if closing is not None:
            await closing()


async def test_an_enqueue_wakes_a_subscriber(backend: Subject) -> None:
    """A subscriber of wake-ups hears an enqueue of a ready run."""
    queue = backend.queue

    async def enqueue() -> None:
        await queue.enqueue([EnqueueRequest("job")])

    await _hear(backend.signals.wakeups(), enqueue)


async def test_a_subscription_says_when_it_is_live(backend: Subject) -> None:
    """A subscription's first item (False) says it is subscribed: one enqueue sent after it
    is heard, with no poking again (a worker counts itself started only then)."""
    subscription = backend.signals.wakeups()
    try:
        assert await asyncio.wait_for(anext(subscription), AT_MOST) is False
        await backend.queue.enqueue([EnqueueRequest("job")])
        async with asyncio.timeout(AT_MOST):
            while not await anext(subscription):  # a quiet spell may come first
                pass
    finally:
        closing = getattr(subscription, "aclose", None)
        if closing is not None:
            await closing()


async def test_a_resume_wakes_a_subscriber(backend: Subject) -> None:
    """Resuming a paused job whose runs wait wakes subscribers: its runs are ready again."""
    queue = backend.queue
    await queue.pause("report")
    await queue.enqueue([EnqueueRequest("report")])

    async def pause_and_resume() -> None:
        await queue.pause("report")
        await queue.resume("report")

    await _hear(backend.signals.wakeups(), pause_and_resume)


async def test_a_schedule_change_reaches_a_subscriber(backend: Subject) -> None:
    """A subscriber of schedule changes hears a schedule being paused or resumed."""
    schedules = backend.schedules
    await schedules.create(
        Schedule(Every(timedelta(minutes=5)), job="x", id="s"), backend.clock.now()
    )
    paused = False

    async def toggle() -> None:
        nonlocal paused
        paused = not paused
        await schedules.set_paused("s", paused=paused)

    await _hear(backend.signals.schedule_changes(), toggle)
