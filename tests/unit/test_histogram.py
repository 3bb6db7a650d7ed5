"""The duration histogram: buckets per decade, estimates within 10 %, Prometheus bounds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.histogram import (
    EDGES_MS,
    Histogram,
    bucket_of,
    representative,
)


def test_every_duration_from_1_ms_to_a_day_reads_within_ten_percent() -> None:
    """Over whole milliseconds from 1 ms to ~28 h, a bucket's midpoint is within 10 %."""
    samples = [*range(1, 20_000), *range(20_000, 100_000_000, 997)]
    worst = max(abs(representative(bucket_of(ms)) / timedelta(milliseconds=ms) - 1)
                for ms in samples)  # fmt: skip
    assert worst < 0.1  # RELATIVE_ERROR (9.26 %), plus rounding to whole microseconds


@pytest.mark.parametrize(("ms", "bucket"), [(0, 0), (1, 1), (9, 13), (10, 14), (999, 39),
                                             (1000, 40), (10**10, 131)])  # fmt: skip
def test_powers_of_ten_are_bucket_edges(ms: int, bucket: int) -> None:
    """10 ms, 1 s ... start a bucket, so Prometheus bounds at powers of ten are exact."""
    assert bucket_of(ms) == bucket
    assert EDGES_MS[39] == 1000


def test_percentiles_and_cumulative_counts() -> None:
    """p50 of 0.9, 2, 3 s is near 2 s; cumulative counts at 1 s and 2.5 s; sums add up."""
    a = Histogram({bucket_of(900): 1, bucket_of(2000): 1})
    b = Histogram({bucket_of(3000): 1}, timedelta(seconds=3))
    both = a + b
    p50 = both.percentile(0.5)
    assert p50 is not None
    assert abs(p50.total_seconds() / 2 - 1) <= 0.1
    assert (both.count, both.total, both.cumulative([1.0, 2.5, 10.0])) == (
        3,
        timedelta(seconds=3),
        [1, 2, 3],
    )
    assert Histogram().percentile(0.5) is None
