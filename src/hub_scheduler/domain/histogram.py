"""Log-bucketed histograms of durations: small, mergeable, and percentiles within 10 %.

Bucket ``k`` (1 to `OVERFLOW` - 1) holds durations ``d`` (whole milliseconds) with
``10 ** ((k - 1) / 13) <= d < 10 ** (k / 13)``: thirteen buckets per decade, so each spans
a ratio of ``10 ** (1 / 13)`` (about 1.194) and every power of ten (1 ms, 10 ms ... 1 s ...)
is an edge. Reporting a bucket's geometric midpoint is within ``10 ** (1 / 26) - 1`` (9.3 %)
of any duration in it. Bucket 0 holds durations under 1 ms (reported as 0.5 ms); the last,
`OVERFLOW`, those of 10^10 ms (115 days) or more. Stores count per bucket (`EDGES_MS` gives
the lower edges as whole milliseconds, for their scripts) and add counts up across workers,
hours and days.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import Final

import attrs

#: Buckets per power of ten.
PER_DECADE: Final = 13
#: The highest regular bucket's upper edge is 10^(LAST / 13) ms = 10^10 ms.
LAST: Final = 10 * PER_DECADE
#: The lower edge of bucket k (k = 1..LAST + 1), as the smallest whole millisecond in it:
#: ``EDGES_MS[k - 1] = ceil(10 ** ((k - 1) / 13))``, exactly at the powers of ten.
EDGES_MS: Final[tuple[int, ...]] = tuple(
    10 ** (j // PER_DECADE) if j % PER_DECADE == 0 else math.ceil(10 ** (j / PER_DECADE))
    for j in range(LAST + 1)
)
OVERFLOW: Final = LAST + 1
#: The largest relative error of a reported value over any duration of at least 1 ms.
RELATIVE_ERROR: Final = 10 ** (1 / (2 * PER_DECADE)) - 1


def bucket_of(ms: int) -> int:
    """The bucket of a duration in whole milliseconds (negative counts as 0)."""
    return bisect.bisect_right(EDGES_MS, ms)


def representative(bucket: int) -> timedelta:
    """What a bucket reports: its geometric midpoint (0.5 ms for bucket 0; the overflow
    bucket's lower edge for it)."""
    if bucket <= 0:
        return timedelta(microseconds=500)
    if bucket >= OVERFLOW:
        return timedelta(milliseconds=EDGES_MS[-1])
    return timedelta(milliseconds=10 ** ((bucket - 0.5) / PER_DECADE))


def upper_edge(bucket: int) -> float:
    """The upper edge of a bucket in seconds (infinity for the overflow bucket)."""
    if bucket >= OVERFLOW:
        return math.inf
    return 10 ** (bucket / PER_DECADE) / 1000


def _counts(value: Mapping[int, int]) -> Mapping[int, int]:
    return MappingProxyType({k: n for k, n in sorted(value.items()) if n})


@attrs.frozen
class Histogram:
    """Counts of durations per bucket (only non-empty ones) and their exact sum.

    Attributes:
        counts: bucket number -> how many durations fell in it.
        total: the sum of the durations counted (exact, in the stores' milliseconds).
    """

    counts: Mapping[int, int] = attrs.field(factory=dict, converter=_counts)
    total: timedelta = timedelta(0)

    @property
    def count(self) -> int:
        """How many durations were counted."""
        return sum(self.counts.values())

    def percentile(self, q: float) -> timedelta | None:
        """An estimate of the `q` quantile (0 < q <= 1), within `RELATIVE_ERROR` of a
        duration that lies there (or 0.5 ms below 1 ms); None when nothing was counted."""
        count = self.count
        if not count:
            return None
        seen = 0
        for bucket, n in self.counts.items():
            seen += n
            if seen >= q * count:
                return representative(bucket)
        return representative(max(self.counts))  # pragma: no cover - rounding guard

    def cumulative(self, bounds: Sequence[float]) -> list[int]:
        """Counts at or below each bound (seconds, ascending), as Prometheus buckets are:
        a fine bucket counts below a bound when its geometric midpoint does. At a power of
        ten (a bucket edge) only a duration exactly on the bound is misplaced (counted
        above it); elsewhere a duration within `RELATIVE_ERROR` of a bound may be."""
        middles = [(representative(k).total_seconds(), n) for k, n in self.counts.items()]
        return [sum(n for middle, n in middles if middle <= bound) for bound in bounds]

    def __add__(self, other: Histogram) -> Histogram:
        merged = dict(self.counts)
        for bucket, n in other.counts.items():
            merged[bucket] = merged.get(bucket, 0) + n
        return Histogram(merged, self.total + other.total)
