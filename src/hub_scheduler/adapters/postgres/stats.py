"""`Stats` on PostgreSQL: the ``job_stats`` counters the ``exchange`` function keeps, one row
per job, hour or day, and shard (summed here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from hub_scheduler.adapters.postgres.codec import EPOCH, utc
from hub_scheduler.adapters.postgres.store import PostgresStore
from hub_scheduler.domain.histogram import Histogram
from hub_scheduler.domain.ports import HourStats, JobStats, WindowStats

#: Window name -> (bucket kind, number of buckets ending with the current one), as on Redis.
WINDOWS = {"1h": ("h", 2), "24h": ("h", 25), "7d": ("h", 24 * 7 + 1), "90d": ("d", 90)}
HOURLY_TREND = 24
MAX_TREND_HOURS = 24 * 7


def _histogram(counts: Sequence[int] | None, total_ms: int) -> Histogram:
    """A histogram from an array column (element k + 1 counts bucket k) and its sum."""
    return Histogram(dict(enumerate(counts or ())), timedelta(milliseconds=total_ms))


@attrs.define
class _Counts:
    """Counters of one bucket (all shards)."""

    succeeded: int = 0
    failed: int = 0
    dead: int = 0
    durations: Histogram = attrs.field(factory=Histogram)
    waits: Histogram = attrs.field(factory=Histogram)

    def add(self, other: _Counts) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.dead += other.dead
        self.durations += other.durations
        self.waits += other.waits


def _window(buckets: Sequence[_Counts]) -> WindowStats:
    total = _Counts()
    for counts in buckets:
        total.add(counts)
    return WindowStats(
        succeeded=total.succeeded,
        failed=total.failed,
        dead=total.dead,
        durations=total.durations,
        waits=total.waits,
    )


@attrs.define
class PostgresStats:
    """Reads the counters `exchange` writes, in one query."""

    store: PostgresStore

    async def job(
        self,
        job: str,
        now: datetime,
        windows: Sequence[str] = tuple(WINDOWS),
        *,
        trend_hours: int = HOURLY_TREND,
    ) -> JobStats:
        """See `Stats.job`. Reads only the buckets `windows` need."""
        unknown = set(windows) - set(WINDOWS)
        if unknown:
            raise ValueError(f"unknown windows {sorted(unknown)}; use {', '.join(WINDOWS)}")
        if not 1 <= trend_hours <= MAX_TREND_HOURS:
            raise ValueError(f"trend_hours {trend_hours} is not 1 to {MAX_TREND_HOURS}")
        seconds = int((now - EPOCH).total_seconds())
        hour, day = seconds // 3600, seconds // 86400
        hourly_trend = set(windows) == set(WINDOWS)
        hour_count = max(
            [WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "h"]
            + [trend_hours if hourly_trend else 0]
        )
        day_count = max([WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "d"] + [0])
        rows = await self.store.fetch(
            "stats",
            self.store.q(
                "SELECT kind, bucket, succeeded, failed, dead, duration_buckets, duration_ms, "
                "wait_buckets, wait_ms, last_success "
                "FROM {s}.job_stats WHERE job = %(job)s AND ("
                "(kind = 'h' AND bucket > %(hour)s - %(hours)s AND bucket <= %(hour)s) "
                "OR (kind = 'd' AND bucket > %(day)s - %(days)s AND bucket <= %(day)s) "
                "OR kind = 't')"
            ),
            {"job": job, "hour": hour, "hours": hour_count, "day": day, "days": day_count},
        )
        by_bucket: dict[tuple[str, int], _Counts] = {}
        last_success: datetime | None = None
        for row in rows:
            key = (row["kind"], row["bucket"])
            counts = by_bucket.setdefault(key, _Counts())
            counts.add(
                _Counts(
                    row["succeeded"],
                    row["failed"],
                    row["dead"],
                    _histogram(row["duration_buckets"], row["duration_ms"]),
                    _histogram(row["wait_buckets"], row["wait_ms"]),
                )
            )
            if row["last_success"] is not None:
                seen = utc(row["last_success"])
                last_success = seen if last_success is None else max(last_success, seen)
        empty = _Counts()
        counted = {}
        for name in windows:
            kind, count = WINDOWS[name]
            anchor = hour if kind == "h" else day
            counted[name] = _window(
                [by_bucket.get((kind, anchor - i), empty) for i in range(count)]
            )
        hourly = (
            tuple(
                HourStats(
                    hour=EPOCH + timedelta(hours=h),
                    succeeded=by_bucket.get(("h", h), empty).succeeded,
                    failed=by_bucket.get(("h", h), empty).failed,
                    dead=by_bucket.get(("h", h), empty).dead,
                )
                for h in range(hour - trend_hours + 1, hour + 1)
            )
            if hourly_trend
            else ()
        )
        return JobStats(
            job=job,
            windows=counted,
            hourly=hourly,
            last_success=last_success,
            totals=_window([by_bucket.get(("t", 0), empty)]),
        )

    async def jobs(
        self,
        jobs: Sequence[str],
        now: datetime,
        windows: Sequence[str] = tuple(WINDOWS),
        *,
        trend_hours: int = HOURLY_TREND,
    ) -> list[JobStats]:
        """See `Stats.jobs`: one query for every job (`read_jobs_stats`)."""
        return await read_jobs_stats(self.store, jobs, now, windows, trend_hours=trend_hours)


#: The statistics of a window nothing finished in.
_NOTHING = WindowStats()


async def read_jobs_stats(
    store: PostgresStore,
    jobs: Sequence[str],
    now: datetime,
    windows: Sequence[str] = tuple(WINDOWS),
    *,
    trend_hours: int = HOURLY_TREND,
) -> list[JobStats]:
    """`Stats.jobs` on PostgreSQL: the buckets of every job in one query (the job_stats
    primary key leads with the job), assembled as `PostgresStats.job` does."""
    unknown = set(windows) - set(WINDOWS)
    if unknown:
        raise ValueError(f"unknown windows {sorted(unknown)}; use {', '.join(WINDOWS)}")
    if not 1 <= trend_hours <= MAX_TREND_HOURS:
        raise ValueError(f"trend_hours {trend_hours} is not 1 to {MAX_TREND_HOURS}")
    if not jobs:
        return []
    seconds = int((now - EPOCH).total_seconds())
    hour, day = seconds // 3600, seconds // 86400
    hourly_trend = set(windows) == set(WINDOWS)
    hour_count = max(
        [WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "h"]
        + [trend_hours if hourly_trend else 0]
    )
    day_count = max([WINDOWS[w][1] for w in windows if WINDOWS[w][0] == "d"] + [0])
    rows = await store.fetch(
        "stats",
        store.q(
            "SELECT job, kind, bucket, succeeded, failed, dead, duration_buckets, duration_ms, "
            "wait_buckets, wait_ms, last_success "
            "FROM {s}.job_stats WHERE job = ANY(%(jobs)s::text[]) AND ("
            "(kind = 'h' AND bucket > %(hour)s - %(hours)s AND bucket <= %(hour)s) "
            "OR (kind = 'd' AND bucket > %(day)s - %(days)s AND bucket <= %(day)s) "
            "OR kind = 't')"
        ),
        {"jobs": list(dict.fromkeys(jobs)), "hour": hour, "hours": hour_count, "day": day,
         "days": day_count},
    )  # fmt: skip
    by_job: dict[str, dict[tuple[str, int], _Counts]] = {}
    last_success: dict[str, datetime] = {}
    for row in rows:
        buckets = by_job.setdefault(row["job"], {})
        counts = buckets.setdefault((row["kind"], row["bucket"]), _Counts())
        counts.add(
            _Counts(
                row["succeeded"],
                row["failed"],
                row["dead"],
                _histogram(row["duration_buckets"], row["duration_ms"]),
                _histogram(row["wait_buckets"], row["wait_ms"]),
            )
        )
        if row["last_success"] is not None:
            seen = utc(row["last_success"])
            known = last_success.get(row["job"])
            last_success[row["job"]] = seen if known is None else max(known, seen)
    empty = _Counts()
    answers = []
    for job in jobs:
        by_bucket = by_job.get(job, {})
        counted = {}
        for name in windows:
            kind, count = WINDOWS[name]
            anchor = hour if kind == "h" else day
            # Only the buckets the job has (most of a long list ran in few of them).
            picked = [by_bucket[(kind, anchor - i)] for i in range(count)
                      if (kind, anchor - i) in by_bucket]  # fmt: skip
            counted[name] = _window(picked) if picked else _NOTHING
        hourly = (
            tuple(
                HourStats(
                    hour=EPOCH + timedelta(hours=h),
                    succeeded=by_bucket.get(("h", h), empty).succeeded,
                    failed=by_bucket.get(("h", h), empty).failed,
                    dead=by_bucket.get(("h", h), empty).dead,
                )
                for h in range(hour - trend_hours + 1, hour + 1)
            )
            if hourly_trend
            else ()
        )
        answers.append(
            JobStats(
                job=job,
                windows=counted,
                hourly=hourly,
                last_success=last_success.get(job),
                totals=_window([by_bucket["t", 0]]) if ("t", 0) in by_bucket else _NOTHING,
            )
        )
    return answers
