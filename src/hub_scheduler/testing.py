"""For application tests: a clock you control, and recording doubles of what an app plugs in.

`FakeClock` lets a test move time forward instead of sleeping: code that awaits
``clock.sleep(...)`` wakes when the test advances past its deadline. The queue itself is never
faked: tests run the real backend in memory (``memory://``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import attrs

from hub_scheduler.domain.model import (
    Run,
    RunState,
)
from hub_scheduler.domain.ports import (
    AuditEntry,
    Page,
)

__all__ = [
    "FakeAuditLog",
    "FakeClock",
    "FakeNotifier",
]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
#: The worker id a run held by `FakeJobQueue.reap` carries.
REAPER = "reaper"

_T = TypeVar("_T")
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WAITING = frozenset({RunState.QUEUED, RunState.DELAYED, RunState.RETRY_SCHEDULED})


def _as_delta(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


@attrs.define
class _Sleeper:
    deadline: datetime
    future: asyncio.Future[None]


@attrs.define
class FakeClock:
    """A `Clock` that only moves when told to.

    Example:
        >>> clock = FakeClock(datetime(2026, 4, 4, 15, 0, tzinfo=UTC))
        >>> clock.advance(timedelta(minutes=30))
        >>> clock.now().isoformat()
        '2026-04-04T15:30:00+00:00'
    """

    current: datetime = attrs.field(default=DEFAULT_START)
    _sleepers: list[_Sleeper] = attrs.field(factory=list, init=False)
    _sleeping: asyncio.Event | None = attrs.field(default=None, init=False)

    @current.validator
    def _aware(self, _: attrs.Attribute[datetime], value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def now(self) -> datetime:
        """The clock's current instant (aware, UTC)."""
        return self.current.astimezone(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by `seconds`; yields once for 0 or less."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = _Sleeper(
            self.current + timedelta(seconds=seconds),
            asyncio.get_running_loop().create_future(),
        )
        self._sleepers.append(sleeper)
        if self._sleeping is not None:
            self._sleeping.set()
        try:
            await sleeper.future
        finally:
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting in `sleep` right now."""
        return len(self._sleepers)

    async def until_sleeping(self, count: int = 1) -> None:
        """Return once at least `count` tasks wait in `sleep` (so advancing will wake them).

        Wrap it in ``asyncio.timeout`` in tests: a task that never sleeps would hang here.
        """
        while len(self._sleepers) < count:
            self._sleeping = asyncio.Event()
            await self._sleeping.wait()

    def advance(self, by: timedelta | float) -> None:
        """Move time forward by `by` (a timedelta or seconds) and wake due sleepers."""
        delta = _as_delta(by)
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        self.set(self.current + delta)

    def set(self, at: datetime) -> None:
        """Jump to `at` (not before now) and wake sleepers whose deadline has come."""
        if at < self.current:
            raise ValueError(f"cannot go back from {self.current} to {at}")
        self.current = at
        for sleeper in list(self._sleepers):
            if sleeper.deadline <= at and not sleeper.future.done():
                sleeper.future.set_result(None)
                self._sleepers.remove(sleeper)


@attrs.define
class FakeNotifier:
    """A `Notifier` that remembers every dead run it was told about."""

    dead: list[Run] = attrs.field(factory=list)

    async def run_dead(self, run: Run) -> None:
        """Record `run`."""
        self.dead.append(run)


@attrs.define
class FakeAuditLog:
    """An `AuditLog` kept in a list; newest first when listed, cursor = position."""

    entries: list[AuditEntry] = attrs.field(factory=list)

    async def record(self, entry: AuditEntry) -> None:
        """Append `entry`."""
        self.entries.append(entry)

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[AuditEntry]:
        """Entries newest first; `cursor` is the offset returned by the previous page."""
        start = int(cursor) if cursor else 0
        newest_first = self.entries[::-1]
        items = tuple(newest_first[start : start + limit])
        more = start + limit < len(newest_first)
        return Page(items, str(start + limit) if more else None)


# --- queue, dead letters, history -----------------------------------------------------------
