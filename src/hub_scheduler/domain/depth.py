"""Queue depth over time: a small bounded series of snapshots, sampled as processes run.

No store keeps the depth of the queue over time, and the per-hour statistics count attempts
that finished, not runs that waited, so depth cannot be derived from them. Instead the
schedulers (every heartbeat) and the dashboard (every summary it draws) offer the snapshot
they take to `DepthHistory`, which keeps the first one of each minute, of each 10 minutes
and of each hour in three short series in the backend's `SharedStore` (one versioned JSON
value each, written with a compare-and-set): 61 points for the last hour, 145 for the last
day, 169 for the last week, under 20 KB in all. A process writes only when a new bucket
begins (and remembers it did), so the cost is a read and a write per minute per sampling
process, on every backend the shared store runs on. A backend without a shared store keeps
the series in the process.

A point is a sample, not an average: a spike between two samples of the week's series is
not seen there (the hour's series, a minute apart, shows it). Each point also carries the
queue's running counts of succeeded and failed attempts (and of those failed, the ones that
went to the dead letters), so the attempts per minute of the last hour are the differences
between neighbouring points.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from hub_scheduler.domain.errors import ValidationError

if TYPE_CHECKING:
    from hub_scheduler.domain.ports import JobQueue, QueueSnapshot, SharedStore

logger = logging.getLogger("hub_scheduler.depth")

VERSION = 1
#: How often a racing write is retried before the sample is given up (the next one counts).
SWAP_TRIES = 4


@attrs.frozen
class DepthPoint:
    """The queue at one sampled instant (the start of its bucket).

    Attributes:
        at: the bucket's start (UTC).
        waiting: runs waiting to start (ready at any priority, and held by a job's pause).
        delayed: runs waiting for their time (retries, delayed enqueues).
        active: runs being worked on.
        dead: dead letters.
        succeeded: attempts that succeeded since the store began counting.
        failed: attempts that failed (retried or dead) since the store began counting.
        gave_up: of those failed, the attempts that ended their run in the dead letters;
            None for a point stored before points carried it.
    """

    at: datetime
    waiting: int
    delayed: int
    active: int
    dead: int
    succeeded: int = 0
    failed: int = 0
    gave_up: int | None = 0

    def encode(self) -> list[int]:
        """The point as stored: ``[epoch seconds, waiting, delayed, active, dead, succeeded,
        failed, gave_up]`` (`gave_up` last and only when known: older readers take the
        first seven)."""
        known = [] if self.gave_up is None else [self.gave_up]
        return [int(self.at.timestamp()), self.waiting, self.delayed, self.active, self.dead,
                self.succeeded, self.failed, *known]  # fmt: skip

    @classmethod
    def decode(cls, item: Sequence[int]) -> DepthPoint:
        """A stored point (as `encode` wrote it, or an older version without `gave_up`)."""
        at, waiting, delayed, active, dead, succeeded, failed = (int(v) for v in item[:7])
        gave_up = int(item[7]) if len(item) > 7 else None
        return cls(datetime.fromtimestamp(at, UTC), waiting, delayed, active, dead,
                   succeeded, failed, gave_up)  # fmt: skip


@attrs.frozen
class Resolution:
    """One of the series: a point per `step`, `keep` points, shown as the range `name`."""

    name: str
    step: timedelta
    keep: int

    @property
    def key(self) -> str:
        """The shared-store key of this series."""
        return f"depth:{self.name}"

    def bucket(self, now: datetime) -> datetime:
        """The start of the bucket `now` falls in."""
        step = int(self.step.total_seconds())
        return datetime.fromtimestamp(int(now.timestamp()) // step * step, UTC)


#: Range name -> its series (the hour a point a minute, the day every 10 minutes, the week
#: every hour; one point more than the range so that its first bucket is complete).
RESOLUTIONS = {
    r.name: r
    for r in (
        Resolution("1h", timedelta(minutes=1), 61),
        Resolution("24h", timedelta(minutes=10), 145),
        Resolution("7d", timedelta(hours=1), 169),
    )
}


def encode_series(points: Sequence[DepthPoint]) -> bytes:
    """A series as stored: versioned JSON, oldest point first."""
    data = {"v": VERSION, "points": [p.encode() for p in points]}
    return json.dumps(data, separators=(",", ":")).encode()


def decode_series(raw: bytes | None) -> list[DepthPoint]:
    """A stored series (empty for none, or one of a version this code does not know)."""
    if raw is None:
        return []
    data = json.loads(raw)
    if data.get("v") != VERSION:
        return []
    return [DepthPoint.decode(item) for item in data.get("points", ())]


def appended(
    points: Sequence[DepthPoint], point: DepthPoint, resolution: Resolution
) -> list[DepthPoint] | None:
    """`points` with `point` (already at its bucket's start) added, older points beyond
    `resolution.keep` buckets dropped; None when its bucket has a point already (the first
    sample of a bucket stands) or a later one exists (a clock behind the others')."""
    if points and points[-1].at >= point.at:
        return None
    oldest = point.at - resolution.step * (resolution.keep - 1)
    return [p for p in points if p.at >= oldest] + [point]


def point_of(snapshot: QueueSnapshot, at: datetime) -> DepthPoint:
    """The point a queue snapshot makes, at `at`."""
    return DepthPoint(at, snapshot.waiting, snapshot.delayed, snapshot.active, snapshot.dead,
                      snapshot.succeeded, snapshot.failed, snapshot.gave_up)  # fmt: skip


@attrs.define
class _LocalValues:
    """The series of a backend without a shared store, kept in this process."""

    values: dict[str, bytes] = attrs.field(factory=dict)

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def swap(
        self, key: str, expected: bytes | None, value: bytes, ttl: timedelta | None = None
    ) -> bool:
        del ttl
        if self.values.get(key) != expected:
            return False
        self.values[key] = value
        return True


@attrs.define(eq=False)
class DepthHistory:
    """The queue's depth over the last hour, day and week, sampled into `shared`.

    Attributes:
        shared: where the series live (None: in this process only).
        queue: what `sample` takes a snapshot of.
    """

    shared: SharedStore | None
    queue: JobQueue
    _local: _LocalValues = attrs.field(factory=_LocalValues, init=False)
    #: The bucket each series last got a point in from this process (or found one in).
    _recorded: dict[str, datetime] = attrs.field(factory=dict, init=False)

    def _due(self, now: datetime) -> list[Resolution]:
        return [r for r in RESOLUTIONS.values() if self._recorded.get(r.name) != r.bucket(now)]

    async def sample(self, now: datetime) -> None:
        """Take a snapshot and `record` it, when a series is due a point (else nothing is
        read); never raises (a failure is logged, and the next heartbeat samples again)."""
        if not self._due(now):
            return
        try:
            await self.record(await self.queue.snapshot(), now)
        except Exception:  # sampling must never stop the process that samples
            logger.warning("queue depth sampling failed", exc_info=True)

    async def record(self, snapshot: QueueSnapshot, now: datetime) -> None:
        """Add `snapshot` as the point of each series whose current bucket has none yet.
        Raises `BackendUnavailableError`."""
        store = self.shared if self.shared is not None else self._local
        for resolution in self._due(now):
            bucket = resolution.bucket(now)
            point = point_of(snapshot, bucket)
            for _ in range(SWAP_TRIES):
                raw = await store.get(resolution.key)
                new = appended(decode_series(raw), point, resolution)
                if new is None:
                    break  # another process sampled this bucket first
                ttl = resolution.step * resolution.keep
                if await store.swap(resolution.key, raw, encode_series(new), ttl):
                    break
            self._recorded[resolution.name] = bucket

    async def series(self, name: str, now: datetime) -> list[DepthPoint]:
        """The points of the range `name` (``1h``, ``24h``, ``7d``) up to `now`, oldest
        first. Raises `ValidationError` for another name, `BackendUnavailableError`."""
        resolution = RESOLUTIONS.get(name)
        if resolution is None:
            raise ValidationError(f"unknown range {name!r}; use {', '.join(RESOLUTIONS)}")
        store = self.shared if self.shared is not None else self._local
        oldest = resolution.bucket(now) - resolution.step * (resolution.keep - 1)
        points = decode_series(await store.get(resolution.key))
        return [p for p in points if oldest <= p.at <= now]
