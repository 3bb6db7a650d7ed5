"""Per-job statistics on every backend: counted as attempts finish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler.domain.histogram import bucket_of, representative
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
        assert counts.p50 is not None
        assert abs(counts.p50 / timedelta(milliseconds=100) - 1) <= 0.1  # an estimate
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


async def test_a_single_run_reads_within_ten_percent_of_its_duration(backend: Subject) -> None:
    """One attempt of 1.032 s reports p50 and p95 within 10 % of 1.032 s (not the 2.048 of a
    power-of-two bucket), and its exact sum."""
    queue, clock = backend.queue, backend.clock
    await queue.enqueue([EnqueueRequest("report")])
    [claim] = await queue.claim("w1", 1, LEASE)
    clock.advance(1.032)
    await queue.finish(claim, Succeeded())
    day = (await backend.stats.job("report", clock.now(), windows=("24h",))).windows["24h"]
    for estimate in (day.p50, day.p95):
        assert estimate is not None
        assert abs(estimate.total_seconds() / 1.032 - 1) <= 0.1
    assert (day.durations.counts, day.durations.total) == (
        {bucket_of(1032): 1},
        timedelta(seconds=1.032),
    )


async def test_every_backend_puts_durations_in_the_same_buckets(backend: Subject) -> None:
    """Durations on either side of bucket edges (999 / 1000 ms, 1 / 2 ms, 0 ms) land in the
    buckets `bucket_of` names, whatever computes them (Lua, SQL)."""
    queue, clock = backend.queue, backend.clock
    durations = [0, 1, 2, 999, 1000, 86_400_000]
    for ms in durations:
        await queue.enqueue([EnqueueRequest("report")])
        [claim] = await queue.claim("w1", 1, LEASE)
        clock.advance(timedelta(milliseconds=ms))
        await queue.finish(claim, Succeeded())
    totals = (await backend.stats.job("report", clock.now(), windows=("90d",))).totals
    expected: dict[int, int] = {}
    for ms in durations:
        expected[bucket_of(ms)] = expected.get(bucket_of(ms), 0) + 1
    assert dict(totals.durations.counts) == expected


async def test_queue_wait_counts_from_when_a_run_was_due(backend: Subject) -> None:
    """A run's queue wait runs from its due time (enqueue, or the delay's end, or its retry's
    due time) to when a worker starts it."""
    queue, clock = backend.queue, backend.clock
    await queue.enqueue(
        [
            EnqueueRequest("report"),
            EnqueueRequest("report", run_at=clock.now() + timedelta(seconds=10)),
        ]
    )
    clock.advance(3)
    [claim] = await queue.claim("w1", 1, LEASE)  # waited 3 s
    await queue.finish(
        claim, Failed(ErrorInfo("ValueError", "x"), RetryAfter(timedelta(seconds=1), 2))
    )
    clock.advance(9)
    await queue.claim("w1", 2, LEASE)  # the delayed one waited 2 s, the retry 8 s
    waits = (await backend.stats.job("report", clock.now(), windows=("24h",))).windows["24h"]
    assert (waits.waits.count, waits.waits.total) == (3, timedelta(seconds=13))
    assert waits.wait_p50 is not None
    assert abs(waits.wait_p50.total_seconds() / 3 - 1) <= 0.1


async def test_the_queue_counts_succeeded_and_failed_attempts_of_every_job(
    backend: Subject,
) -> None:
    """The snapshot adds up succeeded and failed (retried or dead) attempts over all jobs,
    and of the failed those that went to the dead letters."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest(job) for job in ("a", "b", "c")])
    a, b, c = await queue.claim("w1", 3, LEASE)
    error = ErrorInfo("ValueError", "x")
    await queue.finish(a, Succeeded())
    await queue.finish(b, Failed(error, RetryAfter(timedelta(seconds=1), 2)))
    await queue.finish(c, Failed(error, GiveUp(1)))
    snapshot = await queue.snapshot()
    assert (snapshot.succeeded, snapshot.failed, snapshot.gave_up) == (1, 2, 1)


async def test_the_hourly_trend_reaches_back_a_week_when_asked(backend: Subject) -> None:
    """`trend_hours=168` gives a bucket per hour of the week, an attempt 100 h ago in its
    own hour (the dashboard's 7-day throughput chart); outside 1 to 168 is refused."""
    queue, stats, clock = backend.queue, backend.stats, backend.clock
    clock.set(datetime(2026, 6, 1, 10, 30, tzinfo=UTC))
    await queue.enqueue([EnqueueRequest("report")])
    [claim] = await queue.claim("w1", 1, LEASE)
    await queue.finish(claim, Succeeded())
    clock.advance(timedelta(hours=100))
    week = await stats.job("report", clock.now(), trend_hours=168)
    assert (len(week.hourly), week.hourly[-1].hour) == (168, datetime(2026, 6, 5, 14, tzinfo=UTC))
    counted = [(h.hour, h.succeeded) for h in week.hourly if h.succeeded]
    assert counted == [(datetime(2026, 6, 1, 10, tzinfo=UTC), 1)]
    assert len((await stats.job("report", clock.now())).hourly) == 24  # the default
    with pytest.raises(ValueError, match="trend_hours"):
        await stats.job("report", clock.now(), trend_hours=169)


async def _runs_taking(backend: Subject, ms: int, n: int = 1) -> None:
    """`n` attempts of ``report`` that start together and succeed `ms` later."""
    await backend.queue.enqueue([EnqueueRequest("report") for _ in range(n)])
    claims = await backend.queue.claim("w1", n, LEASE)
    backend.clock.advance(timedelta(milliseconds=ms))
    for claim in claims:
        await backend.queue.finish(claim, Succeeded())


async def test_each_hour_of_the_trend_has_its_own_duration_percentiles(backend: Subject) -> None:
    """Nine attempts of 50 ms and one of 2 s in one hour, three of 1.5 s two hours later:
    each hour reports its own p50/p95 (the bucket of 50 ms / 2 s, then 1.5 s twice); the
    hour between, with no run, has none."""
    clock = backend.clock
    clock.set(datetime(2026, 6, 1, 10, 5, tzinfo=UTC))
    await _runs_taking(backend, 50, n=9)
    await _runs_taking(backend, 2000)
    clock.set(datetime(2026, 6, 1, 12, 40, tzinfo=UTC))
    await _runs_taking(backend, 1500, n=3)
    trend = (await backend.stats.job("report", clock.now(), trend_hours=3)).hourly
    assert [h.hour.hour for h in trend] == [10, 11, 12]
    first, between, last = trend
    assert (first.durations.count, first.durations.total) == (10, timedelta(seconds=2.45))
    assert (first.p50, first.p95) == (
        representative(bucket_of(50)),
        representative(bucket_of(2000)),
    )
    assert (between.durations.count, between.p50, between.p95) == (0, None, None)
    assert (last.p50, last.p95) == (representative(bucket_of(1500)),) * 2
    assert abs(last.p95 / timedelta(seconds=1.5) - 1) <= 0.1  # type: ignore[operator]
