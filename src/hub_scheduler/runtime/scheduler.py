"""The scheduler loop: turns due schedule slots into runs, exactly once per slot.

Any number of schedulers may run this loop against one store. Each claims a batch of due
schedules for a short lease (replicas take different batches: they share the work), plans
their due slots (`plan_fire`) and asks the store to fire the batch in one call, each schedule
with a compare-and-advance on its version, so exactly one of them records each slot however
they race, restart or stall (a lease that ended under a stalled scheduler included); the
losers simply re-read. Between fires the loop sleeps until the next due instant,
and wakes early when schedules change (`Signals`).

Every heartbeat it also checks the store (`check`): schedules declared in code that are
missing (the store lost its data: a FLUSHALL, a Redis without persistence restarting) are
synced again, and a schedule whose slot is overdue beyond its misfire grace (the dead-man
check: nothing fired it) is fired now and alerted once per overdue episode.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from hub_scheduler.domain.depth import DepthHistory
from hub_scheduler.domain.errors import HubSchedulerError, ValidationError
from hub_scheduler.domain.firing import plan_fire
from hub_scheduler.domain.ports import (
    Clock,
    Notifier,
    OverdueSchedule,
    PlannedFire,
    Presence,
    ScheduleAlerts,
    SchedulerInfo,
    ScheduleState,
    ScheduleStore,
    Signals,
)
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.schedule import Cron, Every, Schedule, SlotOutcome, load_timezone
from hub_scheduler.runtime.alerts import AlertMonitor
from hub_scheduler.runtime.waits import Waker, follow

logger = logging.getLogger("hub_scheduler.scheduler")
alert_log = logging.getLogger("hub_scheduler.alerts")


def trigger_spec(schedule: Schedule) -> str:
    """The trigger as an operator writes it: ``cron '0 2 * * *' Australia/Sydney``."""
    trigger = schedule.trigger
    if isinstance(trigger, Cron):
        return f"cron '{trigger.expression}' {trigger.timezone}"
    if isinstance(trigger, Every):
        return trigger.describe().lower()
    return f"once at {trigger.at:%Y-%m-%d %H:%M:%S} UTC"


def local_time(state: ScheduleState) -> str:
    """The next fire in the schedule's zone, e.g. ``2026-06-02 02:00 AEST (+10:00)``."""
    if state.next_fire is None:
        return "never (ended)"
    local = state.next_fire.astimezone(load_timezone(state.schedule.timezone))
    return f"{local:%Y-%m-%d %H:%M %Z} ({local:%z})".replace("(+0000)", "(UTC)")


#: Firing further ahead would hide too many changes (pause, edit, removal) from due slots.
MAX_LOOKAHEAD = timedelta(minutes=1)


def _lookahead(_: object, __: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not timedelta(0) <= value <= MAX_LOOKAHEAD:
        raise ValidationError(f"lookahead must be between 0 and {MAX_LOOKAHEAD}, got {value}")


@attrs.define(eq=False)
class Scheduler:
    """Fires due slots of every schedule in `store`.

    Attributes:
        store: where schedules live.
        presence: where the scheduler reports itself alive, with its fire lateness.
        registry: the app's jobs (for the priority of scheduled runs).
        clock: where time comes from.
        signals: optional wake-ups on schedule changes (wakes the loop early).
        declared: the schedules declared in code, synced again when the store lost them
            (empty: nothing is synced by this scheduler).
        notifier: told about overdue schedules when it has `ScheduleAlerts` (else they are
            logged at ERROR on ``hub_scheduler.alerts``).
        alerts: evaluates the alert rules every heartbeat (None: this scheduler does not;
            its id becomes the monitor's, so replicas agree who reports an outage).
        depth: sampled every heartbeat, for the dashboard's queue depth chart (None: this
            scheduler does not sample).
        max_sleep: the longest the loop sleeps without looking (seconds).
        batch: schedules claimed and fired per store call.
        claim_lease: how long a claimed batch is withheld from other schedulers; a
            scheduler that dies holding one delays its slots by at most this much.
        lookahead: fire slots this far ahead of their instant, each as a run delayed to its
            slot, so thousands of schedules due on one instant are ready on it rather than
            when the scheduler gets through them (zero: fire each slot when it is due). A
            schedule paused, edited or removed within the lookahead of a slot still runs
            that slot; a run already fired can be cancelled.
        lateness: how late recent on-time fires were (seconds), newest last.
    """

    store: ScheduleStore
    presence: Presence
    registry: Registry
    clock: Clock
    signals: Signals | None = None
    declared: Sequence[Schedule] = ()
    notifier: Notifier | None = None
    alerts: AlertMonitor | None = None
    depth: DepthHistory | None = None
    max_sleep: float = 30.0
    batch: int = 500
    claim_lease: timedelta = timedelta(seconds=5)
    lookahead: timedelta = attrs.field(default=timedelta(0), validator=_lookahead)
    id: str = attrs.field(factory=lambda: f"scheduler-{random.getrandbits(48):012x}")
    heartbeat_every: timedelta = timedelta(seconds=5)
    _last_beat: datetime | None = attrs.field(default=None, init=False)
    _last_check: datetime | None = attrs.field(default=None, init=False)
    _overdue: set[str] = attrs.field(factory=set, init=False)
    _announced: bool = attrs.field(default=False, init=False)
    lateness: deque[float] = attrs.field(factory=lambda: deque(maxlen=10_000))
    _wake: Waker = attrs.field(init=False)
    _stop: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _running: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self._wake = Waker(self.clock)
        if self.alerts is not None:
            self.alerts.id = self.id

    async def tick(self) -> int:
        """Fire everything due now, a batch at a time; returns how many runs were enqueued.

        Each batch is claimed (`ScheduleStore.claim_due`), so replicas take different
        batches instead of racing for the same slots, and fired in one store call
        (`ScheduleStore.fire_many`). A stop asked meanwhile takes effect between batches.
        """
        enqueued = 0
        while not self._stop.is_set():
            now = self.clock.now()
            horizon = now + self.lookahead
            due = await self.store.claim_due(horizon, self.batch, self.claim_lease)
            if not due:
                break
            enqueued += await self._fire_batch(due, now, horizon)
        return enqueued

    async def fire(self, states: Sequence[ScheduleState]) -> int:
        """Fire the slots of `states` (as read, e.g. from `ScheduleStore.list`) due now,
        claimed elsewhere or not; returns how many runs were enqueued. Each is a
        compare-and-advance: a schedule another scheduler fired since it was read is
        refused here, so once this returns, every slot of `states` due now has fired."""
        now = self.clock.now()
        enqueued = 0
        for start in range(0, len(states), self.batch):
            enqueued += await self._fire_batch(states[start : start + self.batch], now)
        return enqueued

    async def _fire_batch(
        self, states: Sequence[ScheduleState], now: datetime, until: datetime | None = None
    ) -> int:
        priority = self.registry.priority
        fires = []
        for state in states:
            plan = plan_fire(state, now, priority(state.schedule.job), until)
            if plan is not None:
                fires.append(
                    PlannedFire(state, plan.decisions, plan.requests, plan.next_fire,
                                plan.bulk_missed)
                )  # fmt: skip
        if not fires:
            return 0
        results = await self.store.fire_many(fires, now)
        done = self.clock.now()
        enqueued = 0
        for fire, result in zip(fires, results, strict=True):
            if result is None:
                continue  # another scheduler fired these slots first
            for decision in fire.decisions:
                if decision.outcome is SlotOutcome.ENQUEUED:
                    # Fired ahead, a run is ready on its slot: not late at all.
                    self.lateness.append(max(0.0, (done - decision.slot).total_seconds()))
            enqueued += len(result)
        return enqueued

    async def check(self) -> list[OverdueSchedule]:
        """Repair what the store lost and find schedules nothing fired; returns those newly
        overdue (each alerted once per episode).

        Declared schedules missing from the store are synced again (runtime state kept
        where it survived). A schedule whose slot is older than its misfire grace was fired
        by no scheduler (its entry in the due index may be gone too): it is fired now, as
        its misfire policy says, and alerted when first noticed; it is alerted again only
        after it fired and fell overdue anew.
        """
        now = self.clock.now()
        states = list(await self.store.list())
        present = {s.schedule.id for s in states}
        missing = sorted(s.id for s in self.declared if s.id not in present)
        if missing:
            logger.warning(
                "declared schedules missing from the store (%s); syncing them again",
                ", ".join(missing),
                extra={"schedule_ids": missing, "scheduler_id": self.id},
            )
            await self.store.sync_declared(self.declared, now)
            await self._announce()
            return []
        overdue = [
            s for s in states
            if s.next_fire is not None and now - s.next_fire > s.schedule.misfire.grace
        ]  # fmt: skip
        fresh = [
            OverdueSchedule(s.schedule.id, s.schedule.job, s.next_fire, now - s.next_fire)
            for s in overdue
            if s.next_fire is not None and s.schedule.id not in self._overdue
        ]
        self._overdue = {s.schedule.id for s in overdue}
        for alert in fresh:
            await self._alert(alert)
        for start in range(0, len(overdue), self.batch):
            if self._stop.is_set():
                break
            await self._fire_batch(overdue[start : start + self.batch], now)
        return fresh

    async def _alert(self, overdue: OverdueSchedule) -> None:
        if self.alerts is not None:
            return  # the monitor's schedule_overdue rule tells, once across replicas
        if isinstance(self.notifier, ScheduleAlerts):
            try:
                await self.notifier.schedule_overdue(overdue)
            except Exception:  # a notifier must not stop the scheduler
                alert_log.exception("the notifier failed on an overdue schedule")
            return
        alert_log.error(
            "schedule %s of job %s is overdue: its slot %s passed %.0fs ago and no scheduler "
            "fired it",
            overdue.schedule_id, overdue.job, overdue.slot.isoformat(),
            overdue.overdue.total_seconds(),
            extra={"schedule_id": overdue.schedule_id, "job": overdue.job,
                   "slot": overdue.slot.isoformat(), "scheduler_id": self.id},
        )  # fmt: skip

    async def _announce(self) -> None:
        """Log every stored schedule with its next fire in local time, then a summary."""
        states = list(await self.store.list())
        for state in states:
            schedule = state.schedule
            logger.info(
                "Scheduled: %s (%s) next fire %s%s",
                schedule.job, trigger_spec(schedule), local_time(state),
                " [paused]" if state.paused else "",
                extra={"job": schedule.job, "schedule_id": schedule.id,
                       "trigger": trigger_spec(schedule), "timezone": schedule.timezone,
                       "next_fire": state.next_fire.isoformat() if state.next_fire else None,
                       "paused": state.paused,
                       "origin": "code" if state.declared else "runtime"},
            )  # fmt: skip
        logger.info(
            "Job scheduler initialized (%d schedules)", len(states),
            extra={"schedules": len(states), "scheduler_id": self.id},
        )  # fmt: skip
        self._announced = True

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

    @property
    def alive(self) -> bool:
        """True while `run` runs, whether or not the store answers (it retries with
        backoff): what a liveness probe asks."""
        return self._running

    @property
    def stopping(self) -> bool:
        """True once asked to stop."""
        return self._stop.is_set()

    async def run(self) -> None:
        """Fire due slots until `stop`; survives store outages with backoff."""
        listener = None
        if self.signals is not None:
            follower = follow(
                self.signals.schedule_changes, self._wake.wake, self._stop, what="schedule change"
            )
            listener = asyncio.create_task(follower)
        backoff = 0.1
        self._running = True
        try:
            while not self._stop.is_set():
                try:
                    if not self._announced:
                        await self._announce()
                    if self.alerts is not None:
                        # Before `check` fires what is overdue, so the alert sees it.
                        await self.alerts.tick()
                    await self.tick()
                    if self._stop.is_set():
                        break
                    now = self.clock.now()
                    if self._last_check is None or now - self._last_check >= self.heartbeat_every:
                        await self.check()
                        self._last_check = now
                    await self._heartbeat()
                    if self.depth is not None:
                        await self.depth.sample(self.clock.now())  # never raises
                    next_due = await self.store.next_due_at()
                    backoff = 0.1
                except HubSchedulerError as exc:
                    logger.warning("scheduler: %s; retrying in %.1fs", exc, backoff)
                    if self.alerts is not None:
                        await self.alerts.tick()  # notices the outage (never raises)
                    await self._wake.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                wait = min(self.max_sleep, self.heartbeat_every.total_seconds())
                if next_due is not None:
                    ahead = next_due - self.lookahead
                    wait = min(wait, (ahead - self.clock.now()).total_seconds())
                await self._wake.sleep(wait)
        finally:
            self._running = False
            if listener is not None:
                listener.cancel()
                await asyncio.wait({listener}, timeout=5)
