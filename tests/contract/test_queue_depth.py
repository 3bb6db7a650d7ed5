"""Queue depth over time on every backend: samples kept in the shared store, one per bucket,
however many processes sample."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hub_scheduler.domain.depth import DepthHistory
from hub_scheduler.domain.ports import EnqueueRequest, Succeeded
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)
START = datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC)


async def test_one_point_per_minute_with_the_queue_as_it_was(backend: Subject) -> None:
    """Sampled every few seconds for three minutes, the hour's series has one point per
    minute, each the queue at that minute's first sample (waiting, active, succeeded)."""
    backend.clock.set(START)
    history = DepthHistory(backend.shared, backend.queue)
    await backend.queue.enqueue([EnqueueRequest("report") for _ in range(3)])
    await history.sample(backend.clock.now())
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    backend.clock.advance(30)
    await history.sample(backend.clock.now())  # the same minute: its first sample stands
    backend.clock.advance(30)
    await history.sample(backend.clock.now())
    await backend.queue.finish(claim, Succeeded())
    backend.clock.advance(60)
    await history.sample(backend.clock.now())
    points = await history.series("1h", backend.clock.now())
    assert [(p.at.minute, p.waiting, p.active, p.succeeded) for p in points] == [
        (0, 3, 0, 0),
        (1, 2, 1, 0),
        (2, 2, 0, 1),
    ]
    day = await history.series("24h", backend.clock.now())
    assert [(p.at, p.waiting) for p in day] == [(datetime(2026, 6, 1, 10, tzinfo=UTC), 3)]


async def test_processes_sampling_at_once_make_one_point(backend: Subject) -> None:
    """Five processes sampling the same minute (as scheduler replicas do) leave one point,
    which another process reads."""
    backend.clock.set(START)
    await backend.queue.enqueue([EnqueueRequest("report")])
    async with backend.restarted() as other:
        histories = [DepthHistory(backend.shared, backend.queue) for _ in range(4)]
        histories.append(DepthHistory(other.shared, other.queue))
        await asyncio.gather(*(h.sample(backend.clock.now()) for h in histories))
        reader = DepthHistory(other.shared, other.queue)
        points = await reader.series("1h", backend.clock.now())
    assert [(p.at.minute, p.waiting) for p in points] == [(0, 1)]


async def test_each_range_keeps_what_it_shows_and_no_more(backend: Subject) -> None:
    """Sampled every minute for two hours, the hour's series holds the last 61 minutes and
    the week's one point per hour; a point older than its range is dropped."""
    backend.clock.set(START)
    history = DepthHistory(backend.shared, backend.queue)
    for minute in range(120):
        if minute:
            backend.clock.advance(60)
        await history.sample(backend.clock.now())
    now = backend.clock.now()
    hour = await history.series("1h", now)
    assert (len(hour), hour[0].at, hour[-1].at) == (
        61,
        datetime(2026, 6, 1, 10, 59, tzinfo=UTC),
        datetime(2026, 6, 1, 11, 59, tzinfo=UTC),
    )
    assert [p.at.hour for p in await history.series("7d", now)] == [10, 11]
    assert len(await history.series("24h", now)) == 12
    backend.clock.advance(60)  # a minute on, the range starts a minute later
    assert (await history.series("1h", backend.clock.now()))[0].at.minute == 0
