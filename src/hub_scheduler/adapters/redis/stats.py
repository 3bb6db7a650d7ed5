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

    async def jobs(
        self,
        jobs: Sequence[str],
        now: datetime,
        windows: Sequence[str] = tuple(WINDOWS),
        *,
        trend_hours: int = HOURLY_TREND,
    ) -> list[JobStats]:
        """See `Stats.jobs`: one script call (`read_jobs_stats`)."""
        return await read_jobs_stats(self.store, jobs, now, windows, trend_hours=trend_hours)


@attrs.frozen
class _Plan:
    """Which buckets a stats question reads (`RedisStats.jobs`)."""

    windows: tuple[str, ...]
    trend_hours: int
    hour: int
    day: int
    hour_count: int
    day_count: int

    @classmethod
    def of(cls, windows: Sequence[str], trend_hours: int, now: datetime) -> _Plan:
        unknown = set(windows) - set(WINDOWS)
        if unknown:
            raise ValueError(f"unknown windows {sorted(unknown)}; use {', '.join(WINDOWS)}")
        if not 1 <= trend_hours <= MAX_TREND_HOURS:
            raise ValueError(f"trend_hours {trend_hours} is not 1 to {MAX_TREND_HOURS}")
        now_ms = to_ms(now)
        hourly_trend = set(windows) == set(WINDOWS)
        hour_count = max(
            [WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "h"]
            + [trend_hours if hourly_trend else 0]
        )
        day_count = max([WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "d"] + [0])
        return cls(
            tuple(windows), trend_hours, now_ms // HOUR_MS, now_ms // DAY_MS, hour_count,
            day_count,
        )  # fmt: skip

    @property
    def hourly_trend(self) -> bool:
        return set(self.windows) == set(WINDOWS)

    def assemble(self, job: str, found: Mapping[int, dict[str, int]]) -> JobStats:
        """A job's statistics from its non-empty buckets by position (as read_stats.lua
        numbers them: hours back, then days back after the hours, -1 the totals)."""
        counted = {}
        for name in self.windows:
            kind, count = WINDOWS[name]
            offset = 0 if kind == "h" else self.hour_count
            counted[name] = _window(
                [found[at] for at in range(offset, offset + count) if at in found]
            )
        hourly: tuple[HourStats, ...] = ()
        if self.hourly_trend:
            hourly = tuple(
                HourStats(
                    hour=EPOCH + timedelta(hours=self.hour - back),
                    succeeded=found.get(back, {}).get("succeeded", 0),
                    failed=found.get(back, {}).get("failed", 0),
                    dead=found.get(back, {}).get("dead", 0),
                )
                for back in range(self.trend_hours - 1, -1, -1)
            )
        totals = dict(found.get(-1, {}))
        last = totals.pop("last_success", None)
        total = _window([totals]) if totals else _NOTHING
        return JobStats(
            job=job,
            windows=counted,
            hourly=hourly,
            last_success=from_ms(last) if last else None,
            totals=total,
        )


#: The statistics of a window nothing finished in.
_NOTHING = WindowStats()


async def read_jobs_stats(
    store: RedisStore,
    jobs: Sequence[str],
    now: datetime,
    windows: Sequence[str] = tuple(WINDOWS),
    *,
    trend_hours: int = HOURLY_TREND,
) -> list[JobStats]:
    """`Stats.jobs` on Redis: one read_stats.lua call reads every job's buckets and answers
    only the non-empty ones."""
    plan = _Plan.of(windows, trend_hours, now)
    if not jobs:
        return []
    reply = await store.run(
        "read_stats", plan.hour, plan.hour_count, plan.day, plan.day_count, *jobs
    )
    answers = []
    for job, flat in zip(jobs, reply, strict=True):
        found = {
            int(flat[i]): {to_text(fields[k]): int(fields[k + 1]) for k in range(0, len(fields), 2)}
            for i in range(0, len(flat), 2)
            for fields in (flat[i + 1],)
        }
        answers.append(plan.assemble(job, found))
    return answers
