"""`Stats` on Redis: hourly and daily counter hashes written by the settle script."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import attrs
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.codec import EPOCH, from_ms, to_ms, to_text
from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.histogram import Histogram
from hub_scheduler.domain.ports import HourStats, JobStats, WindowStats

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
#: Window name -> (bucket kind, number of buckets ending with the current one).
WINDOWS = {"1h": ("h", 2), "24h": ("h", 25), "7d": ("h", 24 * 7 + 1), "90d": ("d", 90)}
HOURLY_TREND = 24
MAX_TREND_HOURS = 24 * 7


def histogram(fields: Mapping[str, int], prefix: str) -> Histogram:
    """The histogram kept in `prefix` fields (``d`` durations, ``w`` waits): ``<prefix><k>``
    counts bucket k, ``<prefix>sum`` their total ms. The power-of-two ``b<k>`` fields of
    earlier versions are not read (they cannot be split into finer buckets)."""
    counts = {
        int(name[1:]): n for name, n in fields.items() if name[:1] == prefix and name[1:].isdigit()
    }
    return Histogram(counts, timedelta(milliseconds=fields.get(f"{prefix}sum", 0)))


def _window(hashes: list[Mapping[str, int]]) -> WindowStats:
    totals: dict[str, int] = {}
    for fields in hashes:
        for name, value in fields.items():
            totals[name] = totals.get(name, 0) + value
    return WindowStats(
        succeeded=totals.get("succeeded", 0),
        failed=totals.get("failed", 0),
        dead=totals.get("dead", 0),
        durations=histogram(totals, "d"),
        waits=histogram(totals, "w"),
    )


@attrs.define
class RedisStats:
    """Reads the counters `step.lua` keeps (see ``flush_tally`` in ``lua/common.lua``)."""

    store: RedisStore

    async def job(
        self,
        job: str,
        now: datetime,
        windows: Sequence[str] = tuple(WINDOWS),
        *,
        trend_hours: int = HOURLY_TREND,
    ) -> JobStats:
        """See `Stats.job`. Only the buckets `windows` need are read, in one round trip: 25
        small reads for the last 24 h, ~260 for every window and the hourly trend."""
        unknown = set(windows) - set(WINDOWS)
        if unknown:
            raise ValueError(f"unknown windows {sorted(unknown)}; use {', '.join(WINDOWS)}")
        if not 1 <= trend_hours <= MAX_TREND_HOURS:
            raise ValueError(f"trend_hours {trend_hours} is not 1 to {MAX_TREND_HOURS}")
        now_ms = to_ms(now)
        hour, day = now_ms // HOUR_MS, now_ms // DAY_MS
        hourly_trend = set(windows) == set(WINDOWS)
        hour_count = max(
            [WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "h"]
            + [trend_hours if hourly_trend else 0]
        )
        day_count = max([WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "d"] + [0])
        hours = [hour - i for i in range(hour_count)]
        days = [day - i for i in range(day_count)]
        try:
            async with self.store.client.pipeline(transaction=False) as pipe:
                for h in hours:
                    pipe.hgetall(self.store.keys.stats(job, "h", h))
                for d in days:
                    pipe.hgetall(self.store.keys.stats(job, "d", d))
                pipe.hgetall(self.store.keys.stats_total(job))
                replies = await pipe.execute()
        except RedisError as exc:
            raise BackendUnavailableError("stats", type(exc).__name__) from exc
        decoded = [{to_text(k): int(v) for k, v in r.items()} for r in replies]
        by_hour = dict(zip(hours, decoded[: len(hours)], strict=True))
        by_day = dict(zip(days, decoded[len(hours) : -1], strict=True))
        totals_raw = decoded[-1]
        counted = {}
        for name in windows:
            kind, count = WINDOWS[name]
            source = by_hour if kind == "h" else by_day
            anchor = hour if kind == "h" else day
            counted[name] = _window([source.get(anchor - i, {}) for i in range(count)])
        hourly = (
            tuple(
                HourStats(
                    hour=EPOCH + timedelta(hours=h),
                    succeeded=by_hour[h].get("succeeded", 0),
                    failed=by_hour[h].get("failed", 0),
                    dead=by_hour[h].get("dead", 0),
                    durations=histogram(by_hour[h], "d"),
                )
                for h in sorted(hours[:trend_hours])
            )
            if hourly_trend
            else ()
        )
        last = totals_raw.pop("last_success", None)
        return JobStats(
            job=job,
            windows=counted,
            hourly=hourly,
            last_success=from_ms(last) if last else None,
            totals=_window([totals_raw]),
        )
