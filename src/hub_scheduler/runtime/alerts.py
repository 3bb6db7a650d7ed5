"""The alert monitor: reads the store, evaluates the rules, sends each notice once.

Schedulers run it (every `AlertMonitor.every`), as many replicas as there are; each reads the
facts (queue snapshot, live processes, schedules, dead letters, per-job statistics, the
store's vitals), turns them into `Condition` values and folds them into the shared
`AlertBook` with a compare-and-set (`SharedStore.swap`). Only the replica whose write lands
sends that step's notices; one that loses the race re-reads the book and finds them sent.

A backend that does not answer cannot hold the book, so that alert is kept per process: it
is sent by the replica first in line (the smallest id among the schedulers last seen live),
once per outage, and its resolution by the same replica when the store answers again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from hub_scheduler.domain.alerts import (
    Alert,
    AlertBook,
    AlertPolicy,
    AlertStatus,
    Condition,
    Notice,
    NoticeKind,
    Rule,
    advance,
    change_book,
)
from hub_scheduler.domain.errors import BackendUnavailableError, HubSchedulerError
from hub_scheduler.domain.model import Run
from hub_scheduler.domain.ports import AlertChannel, Backend, Clock, HasVitals
from hub_scheduler.domain.registry import Registry

logger = logging.getLogger("hub_scheduler.alerts")

#: Dead letters looked at per evaluation (newest first).
DEAD_LOOKED_AT = 50
ERROR_SHOWN = 300


def _error_text(run: Run) -> str:
    if run.error is None:
        return "unknown error"
    text = f"{run.error.type}: {run.error.message}"
    return text if len(text) <= ERROR_SHOWN else text[: ERROR_SHOWN - 1] + "…"


@attrs.define(eq=False)
class AlertMonitor:
    """Evaluates the alert rules over one backend and sends notices to `channel`.

    Attributes:
        backend: the store to watch (its shared store keeps the book).
        registry: the jobs, for their priorities and per-job failure rates.
        clock: where time comes from.
        channel: where notices go.
        policy: the rules' thresholds.
        id: this process's id among its peers (a scheduler's id, when run by one).
        dashboard: the dashboard's address, for links to runs (``/admin`` by default;
            ``https://jobs.example.com/admin`` makes them absolute).
        every: how often `tick` evaluates.
    """

    backend: Backend
    registry: Registry
    clock: Clock
    channel: AlertChannel
    policy: AlertPolicy = attrs.field(factory=AlertPolicy)
    id: str = attrs.field(factory=lambda: f"alerts-{random.getrandbits(48):012x}")
    dashboard: str = "/admin"
    every: timedelta = timedelta(seconds=10)
    _last: datetime | None = attrs.field(default=None, init=False)
    _peers: tuple[str, ...] = attrs.field(default=(), init=False)
    _down_since: datetime | None = attrs.field(default=None, init=False)
    _down_alert: Alert | None = attrs.field(default=None, init=False)

    async def tick(self) -> list[Notice]:
        """`evaluate` when `every` has passed since the last evaluation; never raises."""
        now = self.clock.now()
        if self._last is not None and now - self._last < self.every:
            return []
        self._last = now
        try:
            return await self.evaluate()
        except Exception:  # alerts must never stop the scheduler that runs them
            logger.exception("alert evaluation failed")
            return []

    async def evaluate(self) -> list[Notice]:
        """Evaluate every rule once and send what this process won; returns those notices."""
        now = self.clock.now()
        try:
            conditions, evaluated = await self._conditions(now)
            notices = await self._recovered(now)

            def step(book: AlertBook) -> tuple[AlertBook, list[Notice]]:
                fresh = [c for c in conditions if not c.event or self._new_dead(c, book)]
                return advance(book, fresh, evaluated, now, self.policy)

            notices += await change_book(self.backend.shared, now, step) or []
        except BackendUnavailableError as exc:
            notices = self._unreachable(now, exc)
        for notice in notices:
            await self._send(notice)
        return notices

    def _new_dead(self, condition: Condition, book: AlertBook) -> bool:
        dead_at = condition.details.get("dead_at")
        return dead_at is None or datetime.fromisoformat(str(dead_at)) >= book.started

    async def _send(self, notice: Notice) -> None:
        try:
            await self.channel.send(notice)
        except Exception:  # a channel must not stop the evaluation
            logger.exception("the alert channel failed on %s", notice.title)

    # --- the backend itself ----------------------------------------------------------------

    def _unreachable(self, now: datetime, exc: BackendUnavailableError) -> list[Notice]:
        if self._down_since is None:
            self._down_since = now
        if self._down_alert is not None or now - self._down_since < self.policy.unreachable_for:
            return []
        if self.id != min((*self._peers, self.id)):
            return []  # the replica first in line tells
        condition = Condition(
            Rule.BACKEND_UNREACHABLE, "backend",
            f"the backend at {self.backend.url} does not answer ({exc})",
            details={"backend": self.backend.url, "since": self._down_since.isoformat(),
                     "noticed_by": self.id},
        )  # fmt: skip
        self._down_alert = Alert(
            condition, AlertStatus.FIRING, self._down_since, fired_at=now, notified_at=now
        )
        return [Notice(self._down_alert, NoticeKind.FIRING)]

    async def _recovered(self, now: datetime) -> list[Notice]:
        self._down_since = None
        alert, self._down_alert = self._down_alert, None
        if alert is None:
            return []
        resolved = attrs.evolve(
            alert, status=AlertStatus.RESOLVED, resolved_at=now, notified_at=now
        )

        def record(book: AlertBook) -> tuple[AlertBook, None]:
            return attrs.evolve(book, recent=(resolved, *book.recent)[:50]), None

        await change_book(self.backend.shared, now, record)
        return [Notice(resolved, NoticeKind.RESOLVED)]

    # --- the facts -------------------------------------------------------------------------

    async def _conditions(self, now: datetime) -> tuple[list[Condition], frozenset[Rule]]:
        backend = self.backend
        snapshot = await backend.queue.snapshot()
        workers = await backend.presence.workers(now)
        self._peers = tuple(s.id for s in await backend.presence.schedulers(now))
        states = await backend.schedules.list()
        dead = (await backend.dead_letters.list(limit=DEAD_LOOKED_AT)).items
        evaluated = set(Rule) - {Rule.BACKEND_UNREACHABLE, Rule.BACKEND_MEMORY}
        found: list[Condition] = []
        if snapshot.paused:
            found.append(Condition(
                Rule.QUEUE_PAUSED, "queue", "the queue is paused: no run starts",
                details={"waiting": snapshot.waiting},
            ))  # fmt: skip
        found += [
            Condition(Rule.JOB_PAUSED, job, f"job {job} is paused: its runs wait",
                      job=job, priority=self.registry.priority(job))
            for job in sorted(snapshot.paused_jobs)
        ]  # fmt: skip
        if not workers and snapshot.waiting and not snapshot.paused:
            oldest = snapshot.oldest_waiting
            found.append(Condition(
                Rule.NO_WORKER, "queue", f"{snapshot.waiting} runs wait and no worker is live",
                details={"waiting": snapshot.waiting, "oldest_waiting_seconds":
                         None if oldest is None else round(oldest.total_seconds())},
            ))  # fmt: skip
        for state in states:
            if state.next_fire is not None and now - state.next_fire > state.schedule.misfire.grace:
                late = now - state.next_fire
                job = state.schedule.job
                found.append(Condition(
                    Rule.SCHEDULE_OVERDUE, state.schedule.id,
                    f"schedule {state.schedule.id} of job {job} is overdue: its slot "
                    f"{state.next_fire.isoformat()} passed {late.total_seconds():.0f}s ago "
                    "and no scheduler fired it",
                    details={"slot": state.next_fire.isoformat(),
                             "overdue_seconds": round(late.total_seconds())},
                    job=job, priority=self.registry.priority(job),
                ))  # fmt: skip
        found += [self._dead(run) for run in dead]
        found += await self._rates(now)
        memory = await self._memory()
        if memory is not None:
            evaluated.add(Rule.BACKEND_MEMORY)
            found += memory
        return found, frozenset(evaluated)

    def _dead(self, run: Run) -> Condition:
        dead_at = run.finished_at or run.enqueued_at
        return Condition(
            Rule.RUN_DEAD, run.job,
            f"run {run.id} of job {run.job} is dead after {run.attempt} attempts: "
            f"{_error_text(run)}",
            details={"run_id": run.id, "attempts": run.attempt, "error": _error_text(run),
                     "dead_at": dead_at.isoformat()},
            job=run.job, priority=self.registry.priority(run.job),
            link=f"{self.dashboard.rstrip('/')}/runs/{run.id}", event_id=run.id,
        )  # fmt: skip

    async def _rates(self, now: datetime) -> list[Condition]:
        found = []
        dead_in_hour = 0
        for job in self.registry:
            name = job.definition.name
            window = (await self.backend.stats.job(name, now, windows=("1h",))).windows["1h"]
            dead_in_hour += window.dead
            failed = window.failed + window.dead
            if window.finished < self.policy.failure_min_runs or not failed:
                continue
            rate = failed / window.finished
            if rate > self.policy.failure_rate:
                found.append(Condition(
                    Rule.FAILURE_RATE, name,
                    f"job {name} failed {rate:.0%} of {window.finished} attempts in the last "
                    f"hour (threshold {self.policy.failure_rate:.0%})",
                    details={"failed": failed, "finished": window.finished,
                             "rate": round(rate, 4)},
                    job=name, priority=job.definition.priority,
                ))  # fmt: skip
        if dead_in_hour >= self.policy.dlq_growth:
            found.append(Condition(
                Rule.DLQ_GROWTH, "dlq",
                f"{dead_in_hour} runs were dead-lettered in the last hour "
                f"(threshold {self.policy.dlq_growth})",
                details={"dead_last_hour": dead_in_hour},
            ))  # fmt: skip
        return found

    async def _memory(self) -> Sequence[Condition] | None:
        if not isinstance(self.backend, HasVitals):
            return None
        try:
            vitals = await self.backend.vitals()
        except HubSchedulerError:
            return None
        ratio = None if vitals is None else vitals.memory_ratio
        if vitals is None or ratio is None or ratio <= self.policy.memory_ratio:
            return []
        return [Condition(
            Rule.BACKEND_MEMORY, "backend",
            f"Redis uses {ratio:.0%} of its maxmemory (threshold {self.policy.memory_ratio:.0%})",
            details={"used_memory": vitals.used_memory, "max_memory": vitals.max_memory,
                     "eviction_policy": vitals.eviction_policy},
        )]  # fmt: skip
