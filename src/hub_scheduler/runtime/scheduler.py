"""The scheduler loop: turns due schedule slots into runs, exactly once per slot.

Any number of schedulers may run this loop against one store. Each plans the due slots of a
schedule (`plan_fire`) and asks the store to fire them with a compare-and-advance on the
schedule's version, so exactly one of them records each slot however they race, restart or
stall; the losers simply re-read. Between fires the loop sleeps until the next due instant,
and wakes early when schedules change (`Signals`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from datetime import datetime, timedelta

import attrs

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.domain.firing import plan_fire
from hub_scheduler.domain.ports import (
    Clock,
    Presence,
    SchedulerInfo,
    ScheduleState,
    ScheduleStore,
    Signals,
)
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.schedule import SlotOutcome
from hub_scheduler.runtime.waits import Waker, follow

logger = logging.getLogger("hub_scheduler.scheduler")


@attrs.define(eq=False)
class Scheduler:
    """Fires due slots of every schedule in `store`.

    Attributes:
        store: where schedules live.
        presence: where the scheduler reports itself alive, with its fire lateness.
        registry: the app's jobs (for the priority of scheduled runs).
        clock: where time comes from.
        signals: optional wake-ups on schedule changes (wakes the loop early).
        max_sleep: the longest the loop sleeps without looking (seconds).
        lateness: how late recent on-time fires were (seconds), newest last.
    """

    store: ScheduleStore
    presence: Presence
    registry: Registry
    clock: Clock
    signals: Signals | None = None
    max_sleep: float = 30.0
    rng: random.Random = attrs.field(factory=random.Random)
    id: str = attrs.field(factory=lambda: f"scheduler-{random.getrandbits(48):012x}")
    heartbeat_every: timedelta = timedelta(seconds=5)
    _last_beat: datetime | None = attrs.field(default=None, init=False)
    lateness: deque[float] = attrs.field(factory=lambda: deque(maxlen=10_000))
    _wake: Waker = attrs.field(init=False)
    _stop: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)

    def __attrs_post_init__(self) -> None:
        self._wake = Waker(self.clock)

    async def tick(self) -> int:
        """Fire everything due now; returns how many runs were enqueued."""
        enqueued = 0
        while True:
            now = self.clock.now()
            due = await self.store.due(now)
            if not due:
                return enqueued
            # Replicas walk the due schedules in different orders, so they share the work
            # instead of all racing for the same schedule first.
            for state in self.rng.sample(list(due), len(due)):
                enqueued += await self._fire(state, now)

    async def _fire(self, state: ScheduleState, now: datetime) -> int:
        plan = plan_fire(state, now, self.registry.priority(state.schedule.job))
        if plan is None:
            return 0
        result = await self.store.fire(
            state, plan.decisions, plan.requests, plan.next_fire, now,
            bulk_missed=plan.bulk_missed,
        )  # fmt: skip
        if result is None:
            return 0  # another scheduler fired these slots first
        for decision in plan.decisions:
            if decision.outcome is SlotOutcome.ENQUEUED:
                self.lateness.append((self.clock.now() - decision.slot).total_seconds())
        return len(result)

    async def _heartbeat(self) -> None:
        """Tell the store this scheduler is alive, with its recent fire lateness."""
        now = self.clock.now()
        if self._last_beat is not None and now - self._last_beat < self.heartbeat_every:
            return
        recent = sorted(list(self.lateness)[-1000:])
        p50 = p99 = None
        if recent:
            p50 = timedelta(seconds=recent[len(recent) // 2])
            p99 = timedelta(seconds=recent[min(len(recent) - 1, int(len(recent) * 0.99))])
        info = SchedulerInfo(self.id, now, p50, p99)
        await self.presence.scheduler_seen(info, self.heartbeat_every * 3)
        self._last_beat = now

    def stop(self) -> None:
        """Ask `run` to return."""
        self._stop.set()
        self._wake.wake()

    async def run(self) -> None:
        """Fire due slots until `stop`; survives store outages with backoff."""
        listener = None
        if self.signals is not None:
            follower = follow(
                self.signals.schedule_changes, self._wake.wake, self._stop, what="schedule change"
            )
            listener = asyncio.create_task(follower)
        backoff = 0.1
        try:
            while not self._stop.is_set():
                try:
                    await self.tick()
                    await self._heartbeat()
                    next_due = await self.store.next_due_at()
                    backoff = 0.1
                except HubSchedulerError as exc:
                    logger.warning("scheduler: %s; retrying in %.1fs", exc, backoff)
                    await self._wake.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                wait = min(self.max_sleep, self.heartbeat_every.total_seconds())
                if next_due is not None:
                    wait = min(wait, (next_due - self.clock.now()).total_seconds())
                await self._wake.sleep(wait)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.wait({listener}, timeout=5)
