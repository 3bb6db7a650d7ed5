"""The scheduler: turns due schedule slots into runs, exactly once per slot.

Any number of schedulers may run this loop against one store. Each computes the due slots of
a schedule and asks the store to fire them with a compare-and-advance on the schedule's
version, so exactly one of them records each slot however they race, restart or stall; the
losers simply re-read. Between fires the loop sleeps until the next due instant, and wakes
early when schedules change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import attrs

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.domain.model import Priority, RunTrigger
from hub_scheduler.domain.ports import (
    Clock,
    EnqueueRequest,
    SchedulerInfo,
    ScheduleState,
    ScheduleStore,
)
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.schedule import MisfireKind, Schedule, SlotDecision, SlotOutcome

logger = logging.getLogger("hub_scheduler.scheduler")

#: Slots ledgered one by one per fire; older overdue slots beyond it are ledgered in bulk.
MAX_SLOTS = 10_000
#: After a very long outage, only slots within this of now are planned individually.
RECENT = timedelta(hours=1)


#: Counting a bulk-missed range stops here (a counter, not a promise of precision).
MAX_COUNTED = 1_000_000


def _split_outage(schedule: Schedule, first: datetime, now: datetime) -> tuple[int, list[datetime]]:
    """Slots overdue since `first`: how many are older than `RECENT`, and the recent ones."""
    recent = schedule.due(now - RECENT - timedelta(microseconds=1), now)[-MAX_SLOTS:]
    older = itertools.takewhile(
        lambda slot: not recent or slot < recent[0],
        schedule.fires(first - timedelta(microseconds=1)),
    )
    return max(1, sum(1 for _ in itertools.islice(older, MAX_COUNTED))), recent


@attrs.define(eq=False)
class Scheduler:
    """Fires due slots of every schedule in `store`.

    Attributes:
        store: where schedules live.
        registry: the app's jobs (for the priority of scheduled runs).
        clock: where time comes from.
        changes: optional source of "schedules changed" signals (wakes the loop early).
        max_sleep: the longest the loop sleeps without looking (seconds).
        lateness: how late recent on-time fires were (seconds), newest last.
    """

    store: ScheduleStore
    registry: Registry
    clock: Clock
    changes: Callable[[], AsyncIterator[bool]] | None = None
    max_sleep: float = 30.0
    rng: random.Random = attrs.field(factory=random.Random)
    id: str = attrs.field(factory=lambda: f"scheduler-{random.getrandbits(48):012x}")
    heartbeat_every: timedelta = timedelta(seconds=5)
    _last_beat: datetime | None = attrs.field(default=None, init=False)
    lateness: deque[float] = attrs.field(factory=lambda: deque(maxlen=10_000))
    _wake: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _stop: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)

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
        schedule = state.schedule
        if state.next_fire is None:
            return 0
        slots = [state.next_fire, *schedule.due(state.next_fire, now, state.runs + 1, MAX_SLOTS)]
        bulk = 0
        decisions: list[SlotDecision] = []
        if len(slots) > MAX_SLOTS:
            # A long outage: ledger the oldest slots as one bulk "missed" record and plan
            # only the last hour's individually.
            bulk, slots = _split_outage(schedule, state.next_fire, now)
            decisions.append(SlotDecision(state.next_fire, SlotOutcome.MISSED))
        if state.paused:
            decisions += [SlotDecision(s, SlotOutcome.PAUSED) for s in slots]
        else:
            decisions += schedule.misfire.plan(slots, now)
        if bulk and schedule.misfire.kind is MisfireKind.RUN_ONCE:
            decisions[0] = SlotDecision(decisions[0].slot, SlotOutcome.COALESCED)
        firing = [d for d in decisions if d.fires]
        priority = (
            self.registry.get(schedule.job).definition.priority
            if schedule.job in self.registry
            else Priority.NORMAL
        )
        requests = [
            EnqueueRequest(
                job=schedule.job,
                payload=schedule.payload,
                priority=priority,
                trigger=RunTrigger.SCHEDULE,
                schedule_id=schedule.id,
                slot=d.slot,
            )
            for d in firing
        ]
        last = decisions[-1].slot
        next_fire = schedule.next_fire(last, state.runs + len(firing))
        result = await self.store.fire(state, decisions, requests, next_fire, now, bulk_missed=bulk)
        if result is None:
            return 0  # another scheduler fired these slots first
        for decision in firing:
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
        await self.store.heartbeat(info, self.heartbeat_every * 3)
        self._last_beat = now

    def stop(self) -> None:
        """Ask `run` to return."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Fire due slots until `stop`; survives store outages with backoff."""
        listener = asyncio.create_task(self._listen()) if self.changes else None
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
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                wait = min(self.max_sleep, self.heartbeat_every.total_seconds())
                if next_due is not None:
                    wait = min(wait, (next_due - self.clock.now()).total_seconds())
                await self._sleep(wait)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.wait({listener}, timeout=5)

    async def _sleep(self, seconds: float) -> None:
        """Sleep on the clock, or until woken. A wake that came before the sleep began
        (a change, or `stop`) ends it at once: the flag is cleared only after waking."""
        if seconds <= 0 or self._stop.is_set():
            await asyncio.sleep(0)
            return
        timer = asyncio.create_task(self.clock.sleep(seconds))
        woken = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({timer, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            woken.cancel()
            self._wake.clear()

    async def _listen(self) -> None:
        assert self.changes is not None
        while not self._stop.is_set():
            try:
                async for changed in self.changes():
                    if self._stop.is_set():
                        return
                    if changed:
                        self._wake.set()
            except Exception:
                logger.debug("schedule change channel lost; resubscribing")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)
