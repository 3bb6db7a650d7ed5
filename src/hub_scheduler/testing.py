"""Test doubles for hub_scheduler's ports, shipped so applications can test with them too.

Every fake is a plain in-memory object that raises the same errors as the real adapter
and passes the same contract suite. `FakeClock` lets a test move time forward instead of
sleeping: code that awaits ``clock.sleep(...)`` wakes when the test advances past its deadline.

The queue-side fakes (`FakeJobQueue`, `FakeDeadLetters`, `FakeRunHistory`) share one
`FakeStore`, as the Redis adapters share one Redis; `FakeScheduleStore` keeps its schedules
there too and fires runs into the queue it is given:

    >>> store = FakeStore(FakeClock())
    >>> queue, dead, history = FakeJobQueue(store), FakeDeadLetters(store), FakeRunHistory(store)
    >>> schedules = FakeScheduleStore(queue)
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import json
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs

from hub_scheduler.domain.errors import (
    DeadLetterNotFoundError,
    IllegalTransitionError,
    InvalidCursorError,
    InvalidScheduleError,
    RunNotFoundError,
    ScheduleNotFoundError,
)
from hub_scheduler.domain.model import (
    DEFAULT_PAYLOAD_LIMIT,
    FINAL_STATES,
    Payload,
    Priority,
    Run,
    RunState,
    RunTrigger,
    encode_payload,
    new_run_id,
)
from hub_scheduler.domain.ports import (
    AuditEntry,
    Claim,
    Clock,
    Enqueued,
    EnqueueRequest,
    Exchange,
    Failed,
    Outcome,
    Page,
    QueueSnapshot,
    SchedulerInfo,
    ScheduleState,
    SlotRecord,
    WorkerInfo,
)
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.domain.schedule import Every, Once, Schedule, SlotDecision, SlotOutcome

__all__ = [
    "FakeAuditLog",
    "FakeClock",
    "FakeDeadLetters",
    "FakeJobQueue",
    "FakeNotifier",
    "FakeRunHistory",
    "FakeScheduleStore",
    "FakeStore",
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


def _stamp(instant: datetime) -> datetime:
    """`instant` cut to whole milliseconds, the precision the Redis adapter stores."""
    return _EPOCH + (instant - _EPOCH) // _MS * _MS


def _whole_ms(span: timedelta) -> timedelta:
    return span // _MS * _MS


def _checked_payload(job: str, payload: Payload, limit: int) -> dict[str, Any]:
    """The payload after the JSON round trip a real store makes (`PayloadError` if it can't)."""
    decoded: dict[str, Any] = json.loads(encode_payload(job, payload, limit))
    return decoded


def _page(
    rows: Sequence[tuple[tuple[datetime, int], _T]], cursor: str | None, limit: int
) -> Page[_T]:
    """One page of `rows` (sorted newest first by their key).

    The cursor names the key of the last row handed out, so rows added or removed between
    pages neither repeat nor skip any other row.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if cursor:
        at, _, serial = cursor.rpartition("|")
        try:
            after = (datetime.fromisoformat(at), int(serial))
        except ValueError:
            raise InvalidCursorError(cursor) from None
        rows = [row for row in rows if row[0] < after]
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last_at, last_serial = shown[-1][0]
        next_cursor = f"{last_at.isoformat()}|{last_serial}"
    return Page(tuple(item for _, item in shown), next_cursor)


@attrs.define
class FakeStore:
    """The state one hub's queue-side fakes share, as the Redis adapters share one Redis.

    Instants are recorded in whole milliseconds, as the Redis adapter records them.

    Attributes:
        clock: where every instant comes from.
        payload_limit: the largest payload accepted, in bytes of compact UTF-8 JSON.
        runs: every run's latest state, by id (the run history).
        tokens: each run's fencing token; it grows with every claim.
        ready: run ids ready to start, per priority, next to be claimed first.
        delayed: delayed runs and waiting retries: run id -> due instant.
        active: claimed runs: run id -> lease deadline, in order of claim.
        dead: the dead-letter queue: run id -> time of death.
        paused: True while the whole queue is paused.
        paused_jobs: names of paused jobs.
        parked: ready runs of paused jobs, per job, in the order they were met.
        idempotency: idempotency key -> (first run id, end of its window).
        workers: worker id -> (what it last reported, when that report expires).
        schedules: every stored schedule with its runtime state, by id.
        ledgers: each schedule's slot ledger, slot -> record; it outlives the schedule.
    """

    clock: Clock = attrs.field(factory=FakeClock)
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT
    runs: dict[str, Run] = attrs.field(factory=dict)
    tokens: dict[str, int] = attrs.field(factory=dict)
    ready: dict[Priority, deque[str]] = attrs.field(
        factory=lambda: {priority: deque() for priority in sorted(Priority)}
    )
    delayed: dict[str, datetime] = attrs.field(factory=dict)
    active: dict[str, datetime] = attrs.field(factory=dict)
    dead: dict[str, datetime] = attrs.field(factory=dict)
    paused: bool = False
    paused_jobs: set[str] = attrs.field(factory=set)
    parked: dict[str, deque[str]] = attrs.field(factory=dict)
    idempotency: dict[str, tuple[str, datetime]] = attrs.field(factory=dict)
    workers: dict[str, tuple[WorkerInfo, datetime]] = attrs.field(factory=dict)
    schedules: dict[str, ScheduleState] = attrs.field(factory=dict)
    ledgers: dict[str, dict[datetime, SlotRecord]] = attrs.field(factory=dict)
    # Creation order of runs: breaks ties between equal instants in listings and cursors.
    _serials: dict[str, int] = attrs.field(factory=dict, init=False)
    _counter: itertools.count[int] = attrs.field(factory=itertools.count, init=False)

    def now(self) -> datetime:
        """The clock's now, in whole milliseconds."""
        return _stamp(self.clock.now())

    def add(self, run: Run) -> None:
        """Store a new run and put it in line: at the back of its ready list, or delayed."""
        self.runs[run.id] = run
        self.tokens[run.id] = 0
        self._serials[run.id] = next(self._counter)
        if run.state is RunState.DELAYED and run.run_at is not None:
            self.delayed[run.id] = run.run_at
        else:
            self.ready[run.priority].append(run.id)

    def forget(self, run_id: str) -> None:
        """Remove a run from the history and the dead letters."""
        self.runs.pop(run_id, None)
        self.tokens.pop(run_id, None)
        self._serials.pop(run_id, None)
        self.dead.pop(run_id, None)

    def order(self, run_id: str, at: datetime) -> tuple[datetime, int]:
        """The sort key of `run_id` in a listing by instant `at`: ties go by creation order."""
        return at, self._serials[run_id]


@attrs.define
class FakeJobQueue:
    """A `JobQueue` over a `FakeStore`: deques per priority, lease deadlines, pause flags."""

    store: FakeStore

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Enqueue runs in order; see `JobQueue.enqueue`.

        Raises:
            PayloadError: a payload is not a JSON object or is over `FakeStore.payload_limit`;
                nothing of the call is stored.
        """
        store = self.store
        payloads = [_checked_payload(r.job, r.payload, store.payload_limit) for r in requests]
        now = store.now()
        answers: list[Enqueued] = []
        for request, payload in zip(requests, payloads, strict=True):
            run_id = new_run_id()
            key = request.idempotency_key
            if key:
                seen = store.idempotency.get(key)
                if seen is not None and seen[1] > now:
                    answers.append(Enqueued(seen[0], created=False))
                    continue
                window = max(_MS, _whole_ms(request.idempotency_window))
                store.idempotency[key] = (run_id, now + window)
            store.add(
                Run.new(
                    id=run_id,
                    job=request.job,
                    now=now,
                    payload=payload,
                    priority=request.priority,
                    run_at=_stamp(request.run_at) if request.run_at else None,
                    trigger=request.trigger,
                    schedule_id=request.schedule_id or None,
                    slot=_stamp(request.slot) if request.slot else None,
                    idempotency_key=key or None,
                    origin_run_id=request.origin_run_id or None,
                )
            )
            answers.append(Enqueued(run_id))
        return answers

    async def exchange(
        self,
        worker: str,
        settled: Sequence[tuple[Claim, Outcome]],
        want: int,
        lease: timedelta,
    ) -> Exchange:
        """Settle finished attempts, promote due delayed runs, claim up to `want` runs.

        See `JobQueue.exchange`. A settled claim whose token is stale gets False in
        ``applied`` and changes nothing.
        """
        now = self.store.clock.now()
        applied = tuple(self._settle(claim, outcome) for claim, outcome in settled)
        self._promote()
        claims = self._take(worker, want, now, lease)
        next_due = min(self.store.delayed.values(), default=None)
        return Exchange(applied=applied, claims=tuple(claims), next_due=next_due)

    async def claim(self, worker: str, limit: int, lease: timedelta) -> list[Claim]:
        """Take up to `limit` ready runs; see `JobQueue.claim`."""
        return list((await self.exchange(worker, (), limit, lease)).claims)

    async def finish(self, claim: Claim, outcome: Outcome) -> Run | None:
        """Record an attempt's outcome; see `JobQueue.finish`.

        Returns:
            The run in its new state, or None when the claim's token is stale.
        """
        result = await self.exchange(claim.run.worker or "", [(claim, outcome)], 0, timedelta(0))
        return self.store.runs.get(claim.run.id) if result.applied[0] else None

    async def renew(self, worker: str, claims: Sequence[Claim], lease: timedelta) -> list[str]:
        """Extend the leases `worker` holds; returns the ids of runs it no longer holds."""
        store = self.store
        deadline = store.now() + _whole_ms(lease)
        lost = []
        for claim in claims:
            run_id = claim.run.id
            run = store.runs.get(run_id)
            if (
                run is not None
                and run.state is RunState.ACTIVE
                and store.tokens[run_id] == claim.token
                and run.worker == worker
            ):
                if run_id in store.active:
                    store.active[run_id] = deadline
            else:
                lost.append(run_id)
        return lost

    async def hand_back(self, claims: Sequence[Claim]) -> None:
        """Put claimed, unstarted runs back at the front of their queue, in their order.

        Claims whose token is stale are ignored.
        """
        store = self.store
        # Each goes to the front, so walking from the last leaves the first claim first.
        for claim in reversed(claims):
            run_id = claim.run.id
            run = store.runs.get(run_id)
            if run is None or run.state is not RunState.ACTIVE:
                continue
            if store.tokens[run_id] != claim.token:
                continue
            store.active.pop(run_id, None)
            store.runs[run_id] = run.handed_back()
            store.ready[run.priority].appendleft(run_id)

    async def reap(
        self, max_stalls: int, lease: timedelta, limit: int = 100
    ) -> tuple[list[str], list[Claim]]:
        """Recover up to `limit` runs whose lease expired; see `JobQueue.reap`.

        Returns:
            The ids requeued at the front of their queue, and the runs stalled more than
            `max_stalls` times, held by `REAPER` under a fresh token and lease.
        """
        store = self.store
        now = store.clock.now()
        stamp = _stamp(now)
        by_deadline = sorted(store.active.items(), key=lambda item: item[1])
        expired = [run_id for run_id, deadline in by_deadline if deadline <= stamp][:limit]
        requeued: list[str] = []
        held: list[Claim] = []
        # Each requeued run goes to the front: walking from the latest deadline leaves the
        # earliest claim first in line.
        for run_id in reversed(expired):
            run = store.runs.get(run_id)
            if run is None or run.state is not RunState.ACTIVE:
                del store.active[run_id]
            elif run.stalls + 1 <= max_stalls:
                del store.active[run_id]
                store.runs[run_id] = run.stalled()
                store.ready[run.priority].appendleft(run_id)
                requeued.append(run_id)
            else:
                store.tokens[run_id] += 1
                run = attrs.evolve(run, stalls=run.stalls + 1, worker=REAPER)
                store.runs[run_id] = run
                store.active[run_id] = stamp + _whole_ms(lease)
                held.append(Claim(run, store.tokens[run_id], now + lease))
        return requeued, held

    async def cancel(self, run_id: str) -> Run:
        """Cancel a queued, delayed or retry-waiting run.

        Raises:
            RunNotFoundError: no run has this id.
            IllegalTransitionError: the run is active or finished.
        """
        store = self.store
        run = store.runs.get(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        if run.state not in _WAITING:
            raise IllegalTransitionError(run_id, run.state.value, RunState.CANCELLED.value)
        store.delayed.pop(run_id, None)
        for line in (store.ready[run.priority], store.parked.get(run.job, deque[str]())):
            if run_id in line:
                line.remove(run_id)
        cancelled = attrs.evolve(run.cancelled(store.now()), run_at=None)
        store.runs[run_id] = cancelled
        return cancelled

    async def pause(self, job: str | None = None) -> None:
        """Pause the whole queue, or one job; see `JobQueue.pause`."""
        if job is None:
            self.store.paused = True
        else:
            self.store.paused_jobs.add(job)

    async def resume(self, job: str | None = None) -> None:
        """Undo `pause`; a job's parked runs go back to the front of their queues, in order."""
        store = self.store
        if job is None:
            store.paused = False
            return
        store.paused_jobs.discard(job)
        for run_id in reversed(store.parked.pop(job, deque[str]())):
            run = store.runs.get(run_id)
            if run is not None:
                store.ready[run.priority].appendleft(run_id)

    async def snapshot(self, worker_ttl: timedelta = timedelta(seconds=30)) -> QueueSnapshot:
        """The queue's health now; workers count as live if seen within `worker_ttl`."""
        store = self.store
        now = store.clock.now()
        parked = [store.parked[job] for job in store.paused_jobs if job in store.parked]
        # The next run of each line is the oldest waiting one of that line.
        fronts = [line[0] for line in (*store.ready.values(), *parked) if line]
        oldest = min(
            (store.runs[run_id].enqueued_at for run_id in fronts if run_id in store.runs),
            default=None,
        )
        seen_since = _stamp(now) - _whole_ms(worker_ttl)
        live = sorted(
            (
                info
                for info, expires in store.workers.values()
                if info.seen_at >= seen_since and expires > now
            ),
            key=lambda info: info.seen_at,
        )
        return QueueSnapshot(
            depth={priority: len(store.ready[priority]) for priority in sorted(Priority)},
            delayed=len(store.delayed),
            active=len(store.active),
            dead=len(store.dead),
            paused=store.paused,
            paused_jobs=frozenset(store.paused_jobs),
            parked=sum(len(line) for line in parked),
            oldest_waiting=now - oldest if oldest is not None else None,
            workers=tuple(live),
        )

    async def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Record that a worker is alive (shown in `snapshot` until `ttl` has passed)."""
        now = self.store.clock.now()
        self.store.workers[info.id] = (
            attrs.evolve(info, seen_at=_stamp(info.seen_at)),
            now + _whole_ms(ttl),
        )

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a stopped worker from the live list."""
        self.store.workers.pop(worker_id, None)

    def _settle(self, claim: Claim, outcome: Outcome) -> bool:
        store = self.store
        run_id = claim.run.id
        run = store.runs.get(run_id)
        if run is None or run.state is not RunState.ACTIVE or store.tokens[run_id] != claim.token:
            return False
        now = store.now()
        store.active.pop(run_id, None)
        if isinstance(outcome, Failed):
            run = run.failed(now, outcome.error, outcome.decision)
            if isinstance(outcome.decision, GiveUp):
                store.dead[run_id] = now
            elif run.run_at is not None:
                store.delayed[run_id] = run.run_at
        else:
            run = run.succeeded(now)
        store.runs[run_id] = run
        return True

    def _promote(self) -> None:
        store = self.store
        now = store.now()
        due = sorted(
            ((run_id, at) for run_id, at in store.delayed.items() if at <= now),
            key=lambda item: item[1],
        )
        for run_id, _ in due:
            del store.delayed[run_id]
            run = store.runs.get(run_id)
            if run is not None and run.state in (RunState.DELAYED, RunState.RETRY_SCHEDULED):
                store.runs[run_id] = run.due()
                store.ready[run.priority].append(run_id)

    def _take(self, worker: str, want: int, now: datetime, lease: timedelta) -> list[Claim]:
        store = self.store
        claims: list[Claim] = []
        if want <= 0 or store.paused:
            return claims
        stamp = _stamp(now)
        for priority in sorted(Priority):
            line = store.ready[priority]
            while len(claims) < want and line:
                run_id = line.popleft()
                run = store.runs.get(run_id)
                if run is None or run.state is not RunState.QUEUED:
                    continue  # cancelled or cleaned while waiting: nothing to run
                if run.job in store.paused_jobs:
                    store.parked.setdefault(run.job, deque()).append(run_id)
                    continue
                store.tokens[run_id] += 1
                run = run.started(stamp, worker)
                store.runs[run_id] = run
                store.active[run_id] = stamp + _whole_ms(lease)
                claims.append(Claim(run, store.tokens[run_id], now + lease))
            if len(claims) >= want:
                break
        return claims


@attrs.define
class FakeDeadLetters:
    """`DeadLetters` over a `FakeStore`: dead run ids by time of death."""

    store: FakeStore

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Run]:
        """Dead runs, newest first; pass the page's ``next_cursor`` for the next page.

        Raises:
            ValueError: `limit` is less than 1, or `cursor` was not made by this method.
        """
        store = self.store
        rows = sorted(
            ((store.order(run_id, at), store.runs[run_id]) for run_id, at in store.dead.items()),
            key=lambda row: row[0],
            reverse=True,
        )
        return _page(rows, cursor, limit)

    async def get(self, run_id: str) -> Run:
        """One dead run.

        Raises:
            DeadLetterNotFoundError: `run_id` is not in the dead letters.
        """
        if run_id not in self.store.dead:
            raise DeadLetterNotFoundError(run_id)
        return self.store.runs[run_id]

    async def retry(self, run_id: str) -> str:
        """Enqueue a new run (attempt 1) linked to the dead one, which leaves the dead letters.

        Returns:
            The new run's id.

        Raises:
            DeadLetterNotFoundError: `run_id` is not in the dead letters.
        """
        store = self.store
        if store.dead.pop(run_id, None) is None:
            raise DeadLetterNotFoundError(run_id)
        dead = store.runs[run_id]
        new_id = new_run_id()
        store.add(
            Run.new(
                id=new_id,
                job=dead.job,
                now=store.now(),
                payload=json.loads(json.dumps(dead.payload)),
                priority=dead.priority,
                trigger=RunTrigger.DEAD_LETTER_RETRY,
                origin_run_id=run_id,
            )
        )
        return new_id

    async def retry_all(self) -> builtins.list[str]:
        """`retry` every dead letter; returns the new run ids, oldest dead letter first."""
        store = self.store
        oldest_first = sorted(
            store.dead, key=lambda run_id: store.order(run_id, store.dead[run_id])
        )
        return [await self.retry(run_id) for run_id in oldest_first]

    async def delete(self, run_id: str) -> None:
        """Forget one dead letter (its run stays in the history).

        Raises:
            DeadLetterNotFoundError: `run_id` is not in the dead letters.
        """
        if self.store.dead.pop(run_id, None) is None:
            raise DeadLetterNotFoundError(run_id)

    async def purge(self) -> int:
        """Forget every dead letter; returns how many there were."""
        count = len(self.store.dead)
        self.store.dead.clear()
        return count


@attrs.define
class FakeRunHistory:
    """`RunHistory` over a `FakeStore`: every run's latest state, by id."""

    store: FakeStore

    async def get(self, run_id: str) -> Run:
        """One run.

        Raises:
            RunNotFoundError: no run has this id, or it has been cleaned.
        """
        run = self.store.runs.get(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    async def list(
        self,
        *,
        job: str | None = None,
        states: frozenset[RunState] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Run]:
        """Runs newest first by enqueue time, optionally of one job and some states.

        Raises:
            ValueError: `limit` is less than 1, or `cursor` was not made by this method.
        """
        store = self.store
        rows = sorted(
            (
                (store.order(run.id, run.enqueued_at), run)
                for run in store.runs.values()
                if (job is None or run.job == job) and (states is None or run.state in states)
            ),
            key=lambda row: row[0],
            reverse=True,
        )
        return _page(rows, cursor, limit)

    async def clean(self, older_than: datetime, states: frozenset[RunState] | None = None) -> int:
        """Delete finished runs enqueued before `older_than` (only `states`, when given).

        Returns:
            How many runs were deleted. Runs still waiting or active are never deleted.
        """
        store = self.store
        allowed = (states or FINAL_STATES) & FINAL_STATES
        cut = _stamp(older_than)
        doomed = [
            run.id for run in store.runs.values() if run.enqueued_at < cut and run.state in allowed
        ]
        for run_id in doomed:
            store.forget(run_id)
        return len(doomed)


# --- schedules ------------------------------------------------------------------------------


def _schedule_payload_text(schedule: Schedule) -> str:
    return json.dumps(dict(schedule.payload), separators=(",", ":"), ensure_ascii=False)


def _stored_schedule(schedule: Schedule) -> Schedule:
    """`schedule` as the Redis adapter reads it back from its JSON definition: instants and
    spans in whole milliseconds, the payload a plain JSON object."""
    trigger = schedule.trigger
    if isinstance(trigger, Every):
        anchor = _stamp(trigger.anchor) if trigger.anchor is not None else None
        trigger = Every(_whole_ms(trigger.interval), anchor)
    elif isinstance(trigger, Once):
        trigger = Once(_stamp(trigger.at))
    payload: dict[str, Any] = json.loads(_schedule_payload_text(schedule))
    return attrs.evolve(
        schedule,
        trigger=trigger,
        start=_stamp(schedule.start) if schedule.start is not None else None,
        end=_stamp(schedule.end) if schedule.end is not None else None,
        misfire=attrs.evolve(schedule.misfire, grace=_whole_ms(schedule.misfire.grace)),
        payload=payload,
    )


def _same_definition(stored: Schedule, other: Schedule) -> bool:
    """True when both would be stored as the same JSON (payload key order included)."""
    return stored == other and _schedule_payload_text(stored) == _schedule_payload_text(other)


def _ms_text(instant: datetime) -> str:
    return str((instant - _EPOCH) // _MS)


@attrs.define
class FakeScheduleStore:
    """A `ScheduleStore` in the `FakeStore` of a `FakeJobQueue`, into which it fires runs.

    It behaves as the Redis adapter does: instants are kept in whole milliseconds and
    definitions as they read back from JSON; every change moves the schedule's version;
    `fire` creates its runs directly in the queue (with the ``now`` it is given as their
    enqueue time, no payload limit and no idempotency key), refuses a stale version, and
    ledgers the slots of a job paused in the queue as paused. Paused schedules stay in
    `due` and `next_due_at`: the scheduler ledgers their slots as paused.

    Attributes:
        queue: the queue fired runs join; its `FakeStore` holds the schedules and ledgers.
        retention: ledger records of slots older than this are dropped when a schedule fires.
    """

    queue: FakeJobQueue
    retention: timedelta = timedelta(days=90)
    _schedulers: dict[str, tuple[SchedulerInfo, datetime]] = attrs.field(factory=dict, init=False)

    @property
    def store(self) -> FakeStore:
        """The state shared with the queue."""
        return self.queue.store

    def _write(self, stored: Schedule, next_fire: datetime | None, *, declared: bool) -> None:
        """Store a definition, keeping the runtime state; the version moves so a fire
        computed from the old definition is refused."""
        current = self.store.schedules.get(stored.id) or ScheduleState(stored, None)
        self.store.schedules[stored.id] = attrs.evolve(
            current,
            schedule=stored,
            next_fire=_stamp(next_fire) if next_fire is not None else None,
            declared=declared,
            version=current.version + 1,
        )

    async def sync_declared(self, schedules: Sequence[Schedule], now: datetime) -> None:
        """Upsert the schedules declared in code; see `ScheduleStore.sync_declared`.

        A declared schedule whose definition did not change is left exactly as it is (its
        next fire and version too); a changed one gets a next fire recomputed from `now`.
        """
        wanted = {schedule.id for schedule in schedules}
        for schedule in schedules:
            current = self.store.schedules.get(schedule.id)
            next_fire = schedule.next_fire(now, current.runs if current is not None else 0)
            stored = _stored_schedule(schedule)
            if (
                current is not None
                and current.declared
                and _same_definition(current.schedule, stored)
            ):
                continue
            self._write(stored, next_fire, declared=True)
        for state in await self.list():
            if state.declared and state.schedule.id not in wanted:
                await self.delete(state.schedule.id)

    async def create(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """Store a runtime schedule, first firing after `now`.

        Raises:
            InvalidScheduleError: a schedule with this id exists.
        """
        next_fire = schedule.next_fire(now)
        stored = _stored_schedule(schedule)
        if stored.id in self.store.schedules:
            raise InvalidScheduleError("id", f"a schedule with id {schedule.id!r} already exists")
        self._write(stored, next_fire, declared=False)
        return await self.get(schedule.id)

    async def update(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """Replace a definition, keeping the runtime state; the next fire is after `now`.

        Raises:
            ScheduleNotFoundError: no schedule has this id.
        """
        current = await self.get(schedule.id)
        next_fire = schedule.next_fire(now, current.runs)
        self._write(_stored_schedule(schedule), next_fire, declared=current.declared)
        return await self.get(schedule.id)

    async def delete(self, schedule_id: str) -> None:
        """Remove a schedule and its runtime state; its ledger is kept.

        Raises:
            ScheduleNotFoundError: no schedule has this id.
        """
        if self.store.schedules.pop(schedule_id, None) is None:
            raise ScheduleNotFoundError(schedule_id)

    async def get(self, schedule_id: str) -> ScheduleState:
        """One schedule.

        Raises:
            ScheduleNotFoundError: no schedule has this id.
        """
        state = self.store.schedules.get(schedule_id)
        if state is None:
            raise ScheduleNotFoundError(schedule_id)
        return state

    async def list(self, job: str | None = None) -> builtins.list[ScheduleState]:
        """All schedules (of one job), ordered by id."""
        return [
            state
            for _, state in sorted(self.store.schedules.items())
            if job is None or state.schedule.job == job
        ]

    async def set_paused(self, schedule_id: str, *, paused: bool) -> ScheduleState:
        """Pause or resume one schedule (the version moves even when nothing else does).

        Raises:
            ScheduleNotFoundError: no schedule has this id.
        """
        state = await self.get(schedule_id)
        state = attrs.evolve(state, paused=paused, version=state.version + 1)
        self.store.schedules[schedule_id] = state
        return state

    async def due(self, now: datetime, limit: int = 100) -> builtins.list[ScheduleState]:
        """Schedules (paused ones too) whose next fire is at or before `now`, earliest
        first, ties by id; all of them for a negative `limit`."""
        cut = _stamp(now)
        rows = sorted(
            (
                (state.next_fire, schedule_id, state)
                for schedule_id, state in self.store.schedules.items()
                if state.next_fire is not None and state.next_fire <= cut
            ),
            key=lambda row: row[:2],
        )
        states = [state for _, _, state in rows]
        return states[:limit] if limit >= 0 else states

    async def next_due_at(self) -> datetime | None:
        """The earliest next fire over all schedules (paused ones too), or None."""
        return min(
            (s.next_fire for s in self.store.schedules.values() if s.next_fire is not None),
            default=None,
        )

    async def fire(
        self,
        state: ScheduleState,
        decisions: Sequence[SlotDecision],
        requests: Sequence[EnqueueRequest],
        next_fire: datetime | None,
        now: datetime,
        *,
        bulk_missed: int = 0,
    ) -> builtins.list[Enqueued] | None:
        """Compare-and-advance: enqueue, ledger and move on, if nobody did first.

        See `ScheduleStore.fire`. Runs are created as ``enqueue`` would at `now`, minus the
        payload limit and idempotency key; none are created when the job of the first request
        is paused in the queue, and the firing slots are ledgered as paused instead.

        Returns:
            One answer per run created, or None when the stored version is no longer
            ``state.version`` (or the schedule is gone); nothing is changed then.

        Raises:
            ValueError: `requests` is not one per firing decision (nothing is changed).
        """
        store = self.store
        schedule_id = state.schedule.id
        current = store.schedules.get(schedule_id)
        if current is None or current.version != state.version:
            return None
        if len(requests) != sum(1 for decision in decisions if decision.fires):
            raise ValueError("fire needs one request per firing decision")
        payloads: builtins.list[dict[str, Any]] = [
            json.loads(json.dumps(dict(request.payload), ensure_ascii=False))
            for request in requests
        ]
        stamp = _stamp(now)
        job_paused = bool(requests) and requests[0].job in store.paused_jobs
        ledger = store.ledgers.setdefault(schedule_id, {})
        answers: builtins.list[Enqueued] = []
        fired = iter(zip(requests, payloads, strict=True))
        last_outcome = current.last_outcome
        for i, decision in enumerate(decisions):
            outcome, run_id = decision.outcome, None
            if decision.fires:
                request, payload = next(fired)
                if job_paused:
                    outcome = SlotOutcome.PAUSED
                else:
                    run_id = new_run_id()
                    store.add(
                        Run.new(
                            id=run_id,
                            job=request.job,
                            now=stamp,
                            payload=payload,
                            priority=request.priority,
                            run_at=_stamp(request.run_at) if request.run_at else None,
                            trigger=request.trigger,
                            schedule_id=request.schedule_id or None,
                            slot=_stamp(request.slot) if request.slot else None,
                            origin_run_id=request.origin_run_id or None,
                        )
                    )
                    answers.append(Enqueued(run_id))
            slot = _stamp(decision.slot)
            count = bulk_missed if i == 0 and bulk_missed > 1 else 1
            ledger[slot] = SlotRecord(schedule_id, slot, outcome, stamp, run_id, count)
            last_outcome = outcome
        # Retention counts from the slot, as the Redis ledger is scored by slot.
        oldest = stamp - _whole_ms(self.retention)
        for slot in [slot for slot in ledger if slot < oldest]:
            del ledger[slot]
        if not ledger:
            del store.ledgers[schedule_id]
        store.schedules[schedule_id] = attrs.evolve(
            current,
            next_fire=_stamp(next_fire) if next_fire is not None else None,
            last_fire=_stamp(decisions[-1].slot) if decisions else current.last_fire,
            last_outcome=last_outcome,
            runs=current.runs + (0 if job_paused else len(requests)),
            version=current.version + 1,
        )
        return answers

    async def slots(
        self, schedule_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[SlotRecord]:
        """The slot ledger of one schedule, newest slot first, `limit` at a time.

        The cursor has the Redis adapter's form, ``"<slot ms>:<records at that slot already
        returned>"``.

        Raises:
            ValueError: `limit` is less than 1, or `cursor` was not made by this method.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        records = sorted(
            self.store.ledgers.get(schedule_id, {}).values(),
            key=lambda record: record.slot,
            reverse=True,
        )
        top, skip = None, 0
        if cursor:
            ms, _, seen = cursor.partition(":")
            if not (ms.lstrip("-").isdigit() and seen.isdigit()):
                raise InvalidCursorError(cursor)
            top, skip = _EPOCH + int(ms) * _MS, int(seen)
            records = [record for record in records if record.slot <= top]
        rows = records[skip : skip + limit + 1]
        shown = tuple(rows[:limit])
        if len(rows) <= limit:
            return Page(shown)
        last = shown[-1].slot
        same = sum(1 for record in shown if record.slot == last) + (skip if top == last else 0)
        return Page(shown, f"{_ms_text(last)}:{same}")

    async def heartbeat(self, info: SchedulerInfo, ttl: timedelta) -> None:
        """Record a live scheduler until `ttl` after its `seen_at`."""
        self._schedulers[info.id] = (info, info.seen_at + ttl)

    async def schedulers(self, now: datetime) -> builtins.list[SchedulerInfo]:
        """Schedulers whose report has not expired at `now`, by id."""
        return [info for key, (info, until) in sorted(self._schedulers.items()) if until > now]
