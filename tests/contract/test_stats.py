"""Per-job statistics on every backend: counted as attempts finish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Outcome, Succeeded
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)


async def test_outcomes_durations_and_hourly_trend(backend: Subject) -> None:
    """Two successes of ~100 ms, a retry and a dead letter show up in every window."""
    queue, stats = backend.queue, backend.stats
    clock = backend.clock
    clock.set(datetime(2026, 6, 1, 10, 30, tzinfo=UTC))
    await queue.enqueue([EnqueueRequest("report") for _ in range(4)])
    first, second, third, fourth = await queue.claim("w1", 4, LEASE)
    clock.advance(0.1)
    error = ErrorInfo("ValueError", "x")
    for claim, outcome in (
        (first, Succeeded()),
        (second, Succeeded()),
        (third, Failed(error, RetryAfter(timedelta(seconds=2), 2))),
        (fourth, Failed(error, GiveUp(1))),
    ):
        await queue.finish(claim, outcome)
    result = await stats.job("report", clock.now())
    for window in ("1h", "24h", "7d", "90d"):
        counts = result.windows[window]
        assert (counts.succeeded, counts.failed, counts.dead) == (2, 1, 1), window
        assert counts.success_rate == 0.5
        assert counts.p50 == timedelta(milliseconds=128)  # 100 ms lies in the (64, 128] bucket
    assert result.hourly[-1].hour == datetime(2026, 6, 1, 10, tzinfo=UTC)
    assert (result.hourly[-1].succeeded, len(result.hourly)) == (2, 24)
    assert result.last_success == clock.now()
    clock.advance(timedelta(hours=3))
    later = await stats.job("report", clock.now())
    assert later.windows["1h"].finished == 0
    assert later.windows["24h"].finished == 4
    nothing = await stats.job("never-ran", clock.now())
    assert (nothing.windows["90d"].success_rate, nothing.last_success) == (None, None)


async def test_asking_for_one_window_reads_only_that_window(backend: Subject) -> None:
    """A 24 h question answers the 24 h window alone (no trend), and names are checked."""
    queue, stats = backend.queue, backend.stats
    await queue.enqueue([EnqueueRequest("report")])
    [claim] = await queue.claim("w1", 1, LEASE)
    await queue.finish(claim, Succeeded())
    day = await stats.job("report", backend.clock.now(), windows=("24h",))
    assert (set(day.windows), day.windows["24h"].succeeded, day.hourly) == ({"24h"}, 1, ())
    with pytest.raises(ValueError, match="unknown windows"):
        await stats.job("report", backend.clock.now(), windows=("1y",))


async def test_one_settle_batch_counts_every_attempt(backend: Subject) -> None:
    """Attempts of one job settled in a single round trip are each counted once."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest("report") for _ in range(3)])
    claims = await queue.claim("w1", 3, LEASE)
    error = ErrorInfo("ValueError", "x")
    outcomes: list[Outcome] = [Succeeded(), Succeeded(), Failed(error, GiveUp(1))]
    result = await queue.exchange("w1", list(zip(claims, outcomes, strict=True)), 0, LEASE)
    assert result.applied == (True, True, True)
    stats = await backend.stats.job("report", backend.clock.now(), windows=("24h",))
    day = stats.windows["24h"]
    assert (day.succeeded, day.failed, day.dead) == (2, 0, 1)
    assert (stats.totals.succeeded, stats.totals.dead) == (2, 1)
