"""For application tests: your jobs on the real engine, in memory, on a clock you move.

`hub_for_tests` gives a copy of your application's `Hub` that shares its jobs but runs on the
in-memory backend with a `FakeClock` and a `RecordingNotifier`. The helpers then drive the
real worker and scheduler without any real waiting:

- `run_until_idle` runs a worker until no run is queued, delayed, waiting for a retry or
  active, jumping the fake clock over delays and retry backoffs; it returns the runs that
  finished.
- `advance_to_next_fire` moves the clock to the next schedule slot and fires it through the
  real scheduler.
- `assert_enqueued` checks that a run of a job (with a payload) was enqueued, and says what
  was enqueued when none was.
- `wait_for_state` waits until a run reaches a state.

Example:
    >>> import asyncio
    >>> from hub_scheduler import Hub, JobContext, RunState
    >>> app = Hub()
    >>> @app.job("greet")
    ... async def greet(ctx: JobContext) -> None: ...
    >>> async def check() -> RunState:
    ...     hub = hub_for_tests(app)
    ...     await hub.enqueue("greet")
    ...     [run] = await run_until_idle(hub)
    ...     return run.state
    >>> asyncio.run(check())
    <RunState.SUCCEEDED: 'succeeded'>

The queue itself is never faked: the memory backend is the production adapter on fakeredis.
The doubles here stand in for what an application plugs in (clock, notifier, audit log); they
raise the errors the real ones raise and contain no asserts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from hub_scheduler.domain.alerts import Notice
from hub_scheduler.domain.errors import InvalidCursorError
from hub_scheduler.domain.model import FINAL_STATES, Run, RunState
from hub_scheduler.domain.ports import AuditEntry, OverdueSchedule, Page
from hub_scheduler.domain.workflow import Workflow, WorkflowState
from hub_scheduler.hub import MEMORY_URL, Hub
from hub_scheduler.runtime.worker import WorkerSettings

__all__ = [
    "DEFAULT_START",
    "FakeAuditLog",
    "FakeClock",
    "FakeNotifier",
    "RecordingAuditLog",
    "RecordingNotifier",
    "advance_to_next_fire",
    "assert_enqueued",
    "clock_of",
    "hub_for_tests",
    "notifier_of",
    "run_until_idle",
    "wait_for_state",
    "wait_for_workflow",
]

#: Where a `FakeClock` starts unless told otherwise.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

#: States of a run that has not finished yet.
_UNFINISHED = frozenset(
    {RunState.QUEUED, RunState.DELAYED, RunState.RETRY_SCHEDULED, RunState.ACTIVE}
)
_DUE_STATES = frozenset({RunState.DELAYED, RunState.RETRY_SCHEDULED})
#: How often (real seconds) the waiting helpers look again when nothing on the fake clock
#: told them to: a backstop for changes made by other tasks or processes.
_BACKSTOP = 0.05
#: The most runs a helper lists in an error message.
_SHOWN = 20


def _as_delta(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _wake_all(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


@attrs.define
class _Sleeper:
    deadline: datetime
    future: asyncio.Future[None]


@attrs.define
class FakeClock:
    """A `Clock` that only moves when told to.

    Tasks that ``await clock.sleep(...)`` wake when the clock is moved past their deadline;
    the worker and the scheduler sleep this way, so moving the clock drives them.

    Example:
        >>> clock = FakeClock(datetime(2026, 4, 4, 15, 0, tzinfo=UTC))
        >>> clock.advance(timedelta(minutes=30))
        >>> clock.now().isoformat()
        '2026-04-04T15:30:00+00:00'
    """

    current: datetime = attrs.field(default=DEFAULT_START)
    _sleepers: list[_Sleeper] = attrs.field(factory=list, init=False)
    _sleep_waiters: list[asyncio.Future[None]] = attrs.field(factory=list, init=False)

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
        waiters, self._sleep_waiters = self._sleep_waiters, []
        _wake_all(waiters)
        try:
            await sleeper.future
        finally:
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting in `sleep` right now."""
        return len(self._sleepers)

    @property
    def next_deadline(self) -> datetime | None:
        """When the earliest sleeper wakes (None when nobody sleeps)."""
        return min((s.deadline for s in self._sleepers), default=None)

    def next_sleep(self) -> asyncio.Future[None]:
        """A future that completes when a task next starts to `sleep` on this clock.

        The worker's loops and the scheduler's loop sleep on the clock whenever they have
        nothing to do, so this is how helpers learn that they went quiet.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleep_waiters.append(waiter)
        return waiter

    async def until_sleeping(self, count: int = 1) -> None:
        """Return once at least `count` tasks wait in `sleep` (so advancing will wake them).

        Wrap it in ``asyncio.timeout`` in tests: a task that never sleeps would hang here.
        """
        while len(self._sleepers) < count:
            await self.next_sleep()

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
class RecordingNotifier:
    """A `Notifier` and `AlertChannel` that remembers every dead run, overdue schedule and
    alert notice it was told about.

    Attributes:
        dead: the dead runs, in the order they were reported.
        overdue: the overdue schedules, in the order they were reported.
        notices: the alert notices, in the order they were sent.
    """

    dead: list[Run] = attrs.field(factory=list)
    overdue: list[OverdueSchedule] = attrs.field(factory=list)
    notices: list[Notice] = attrs.field(factory=list)
    _taken: int = attrs.field(default=0, init=False)
    _waiters: list[asyncio.Future[None]] = attrs.field(factory=list, init=False)

    async def run_dead(self, run: Run) -> None:
        """Record `run`."""
        self.dead.append(run)
        waiters, self._waiters = self._waiters, []
        _wake_all(waiters)

    async def schedule_overdue(self, overdue: OverdueSchedule) -> None:
        """Record an overdue schedule (in `overdue`)."""
        self.overdue.append(overdue)

    async def send(self, notice: Notice) -> None:
        """Record an alert notice (in `notices`)."""
        self.notices.append(notice)

    async def next_dead(self) -> Run:
        """The oldest dead run not yet returned by `next_dead`, waiting for one if needed.

        A run reported before the call is returned at once, so there is no race between
        starting to wait and the report. Bound the wait with ``asyncio.timeout``.
        """
        await self.wait_until(lambda runs: len(runs) > self._taken)
        run = self.dead[self._taken]
        self._taken += 1
        return run

    async def wait_until(self, condition: Callable[[list[Run]], bool]) -> None:
        """Return once ``condition(self.dead)`` holds (checked now and after each report).

        Bound the wait with ``asyncio.timeout``.
        """
        while not condition(self.dead):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


@attrs.define
class RecordingAuditLog:
    """An `AuditLog` kept in a list; newest first when listed, cursor = position.

    Attributes:
        entries: every entry recorded, oldest first.
    """

    entries: list[AuditEntry] = attrs.field(factory=list)

    async def record(self, entry: AuditEntry) -> None:
        """Append `entry`."""
        self.entries.append(entry)

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[AuditEntry]:
        """Entries newest first; `cursor` is the offset returned by the previous page.

        Raises `InvalidCursorError` for a cursor this log did not hand out.
        """
        if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
            raise InvalidCursorError(cursor)
        start = int(cursor) if cursor else 0
        newest_first = self.entries[::-1]
        items = tuple(newest_first[start : start + limit])
        more = start + limit < len(newest_first)
        return Page(items, str(start + limit) if more else None)


#: The names these doubles had before; applications' tests still import them.
FakeNotifier = RecordingNotifier
FakeAuditLog = RecordingAuditLog


# --- a hub for tests --------------------------------------------------------------------------


def hub_for_tests(app_hub: Hub, *, clock: FakeClock | None = None) -> Hub:
    """A hub with `app_hub`'s jobs, on a private in-memory backend and a fake clock.

    The registry is shared, not copied: the same job definitions and handlers. The prefix,
    retention and payload limit are `app_hub`'s; the backend is a fresh ``memory://`` store
    (whatever `app_hub`'s URL is, nothing is sent to it); the notifier is a
    `RecordingNotifier`.

    Args:
        app_hub: the application's hub, as imported by its tests.
        clock: the clock to run on; a new `FakeClock` at `DEFAULT_START` when omitted.
    """
    return app_hub.with_backend(
        MEMORY_URL, clock=clock or FakeClock(), notifier=RecordingNotifier()
    )


def clock_of(hub: Hub) -> FakeClock:
    """`hub`'s clock, which must be a `FakeClock` (raises `TypeError` otherwise)."""
    if not isinstance(hub.clock, FakeClock):
        raise TypeError(
            f"the hub runs on {type(hub.clock).__name__}, not a FakeClock: "
            "build it with hub_for_tests(app_hub) or Hub(clock=FakeClock())"
        )
    return hub.clock


def notifier_of(hub: Hub) -> RecordingNotifier:
    """`hub`'s notifier, which must be a `RecordingNotifier` (raises `TypeError` otherwise)."""
    if not isinstance(hub.notifier, RecordingNotifier):
        raise TypeError(
            f"the hub notifies through {type(hub.notifier).__name__}, not a "
            "RecordingNotifier: build it with hub_for_tests(app_hub)"
        )
    return hub.notifier


# --- reading the store ---------------------------------------------------------------------


async def _runs(hub: Hub, states: frozenset[RunState] | None = None) -> list[Run]:
    """Every run in `hub`'s history (of `states`), newest first."""
    runs: list[Run] = []
    cursor = None
    while True:
        page = await hub.history.list(states=states, cursor=cursor, limit=500)
        runs.extend(page.items)
        if page.next_cursor is None:
            return runs
        cursor = page.next_cursor


def _describe(runs: Sequence[Run]) -> str:
    """One indented line per run (at most `_SHOWN`), for error messages."""
    lines = [f"  {r.job} {dict(r.payload)!r} ({r.state.value}, run {r.id})" for r in runs[:_SHOWN]]
    if len(runs) > _SHOWN:
        lines.append(f"  ... and {len(runs) - _SHOWN} more")
    return "\n".join(lines) if lines else "  nothing"


async def _next_due(hub: Hub) -> datetime | None:
    """When the earliest delayed run or retry becomes due, if any."""
    due = [run.run_at for run in await _runs(hub, _DUE_STATES) if run.run_at is not None]
    return min(due, default=None)


async def _busy(hub: Hub, now: datetime) -> bool:
    """True while a run is active, ready to start, or delayed until `now` or earlier."""
    while True:
        snapshot = await hub.queue.snapshot()
        ready = 0 if snapshot.paused else sum(snapshot.depth.values())
        if snapshot.active or ready:
            return True
        if not snapshot.delayed:
            return False
        due = await _next_due(hub)
        if due is not None:
            return due <= now
        # The delayed runs moved on between the two reads (a worker claimed them): again.


async def _quiet(clock: FakeClock) -> None:
    """Wait until a task next goes to sleep on `clock` (or a backstop interval passes)."""
    waiter = clock.next_sleep()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(waiter, _BACKSTOP)


# --- the helpers -----------------------------------------------------------------------------


async def run_until_idle(
    hub: Hub,
    *,
    until: datetime | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - its expiry message lists what still waits
    settings: WorkerSettings | None = None,
) -> list[Run]:
    """Run a worker, moving the fake clock, until no run is queued, delayed, waiting for a
    retry or active; return the runs that finished meanwhile (succeeded, dead or cancelled),
    in the order they finished.

    Whenever the worker has nothing left to do now, the clock jumps to the next delayed run
    or retry coming due, so backoffs of minutes or hours take no real time. The worker's
    lease renewal, reaper and heartbeat run on the same clock. Nothing else moves it:
    schedules fire only through `advance_to_next_fire`. Runs of a paused queue or job stay
    waiting and do not keep it busy. With a `RecordingNotifier` (as `hub_for_tests` sets up),
    every dead run has been reported when this returns.

    Args:
        hub: a hub on a `FakeClock`, such as one from `hub_for_tests`.
        until: never move the clock past this instant (runs due later stay delayed).
        timeout: real seconds to allow, for handlers that wait on something real.
        settings: the worker's settings (default: `WorkerSettings` with a 1 s grace).

    Raises:
        TimeoutError: still busy after `timeout` seconds; the message lists what waits.
        TypeError: `hub` is not on a `FakeClock`.
    """
    clock = clock_of(hub)
    before = {run.id for run in await _runs(hub, FINAL_STATES)}
    worker_settings = settings or WorkerSettings(grace=timedelta(seconds=1))
    try:
        async with asyncio.timeout(timeout), hub.worker(worker_settings):
            while True:
                while await _busy(hub, clock.now()):
                    await _quiet(clock)
                due = await _next_due(hub)
                if due is None or (until is not None and due > until):
                    break
                clock.set(max(due, clock.now()))
            finished = [r for r in await _runs(hub, FINAL_STATES) if r.id not in before]
            if isinstance(hub.notifier, RecordingNotifier):
                dead = {run.id for run in finished if run.state is RunState.DEAD}
                await hub.notifier.wait_until(lambda runs: dead <= {r.id for r in runs})
    except TimeoutError:
        waiting = await _runs(hub, _UNFINISHED)
        raise TimeoutError(
            f"run_until_idle: still busy after {timeout:g} s (clock at "
            f"{clock.now().isoformat()}); runs not finished:\n{_describe(waiting)}"
        ) from None
    return sorted(finished, key=lambda r: (r.finished_at or r.enqueued_at, r.id))


async def advance_to_next_fire(hub: Hub, *, sync: bool = True) -> list[str]:
    """Move the fake clock to the next schedule slot and fire it through the real scheduler;
    returns the ids of the runs enqueued (none for a paused schedule or job).

    The clock never goes back: an overdue slot fires at the current instant (its misfire
    policy decides what runs). Every schedule due at that instant fires.

    Args:
        hub: a hub on a `FakeClock`, such as one from `hub_for_tests`.
        sync: first store the schedules declared in code, as a starting scheduler does
            (runtime state such as pauses is kept); False fires only what is stored.

    Raises:
        AssertionError: no stored schedule will ever fire.
        TypeError: `hub` is not on a `FakeClock`.
    """
    clock = clock_of(hub)
    if sync:
        await hub.sync_schedules()
    due = await hub.schedules.next_due_at()
    if due is None:
        stored = [state.schedule.id for state in await hub.schedules.list()]
        raise AssertionError(
            f"no schedule will fire (stored: {', '.join(stored) or 'none'}; schedules "
            "declared in code are stored by hub.sync_schedules() or a running scheduler)"
        )
    clock.set(max(due, clock.now()))
    # Read from the schedules, not the due index: a scheduler running meanwhile may have
    # claimed them already. Firing what was read returns once each has fired, here or there.
    states = [
        state
        for state in await hub.schedules.list()
        if state.next_fire is not None and state.next_fire <= clock.now()
    ]
    decided = {state.schedule.id: await _newest_slot(hub, state.schedule.id) for state in states}
    await hub.scheduler().fire(states)
    fired: list[tuple[datetime, str, str]] = []
    for schedule_id, newest in decided.items():
        cursor = None
        while True:
            page = await hub.schedules.slots(schedule_id, cursor=cursor)
            fresh = [r for r in page.items if newest is None or r.slot > newest]
            fired.extend((r.slot, schedule_id, r.run_id) for r in fresh if r.run_id is not None)
            if page.next_cursor is None or len(fresh) < len(page.items):
                break
            cursor = page.next_cursor
    return [run_id for _, _, run_id in sorted(fired)]


async def _newest_slot(hub: Hub, schedule_id: str) -> datetime | None:
    newest = (await hub.schedules.slots(schedule_id, limit=1)).items
    return newest[0].slot if newest else None


async def assert_enqueued(
    hub: Hub,
    job: str,
    payload: Mapping[str, Any] | None = None,
    *,
    count: int | None = None,
) -> list[Run]:
    """The runs of `job` in `hub`'s history (with exactly `payload`, when given), oldest
    first; raises `AssertionError` listing what was enqueued when there are none (or not
    exactly `count`).

    Every run counts, whatever its state now: one that already ran was enqueued too.
    """
    runs = await _runs(hub)
    wanted = None if payload is None else dict(payload)
    matching = [r for r in runs if r.job == job and (wanted is None or dict(r.payload) == wanted)]
    if (not matching and count is None) or (count is not None and len(matching) != count):
        what = f"{job!r}" if wanted is None else f"{job!r} with payload {wanted!r}"
        expected = "no run" if count is None else f"{len(matching)} runs, not {count},"
        raise AssertionError(
            f"{expected} of {what} enqueued; enqueued (newest first):\n{_describe(runs)}"
        )
    return matching[::-1]


async def wait_for_state(
    hub: Hub,
    run_id: str,
    state: RunState,
    timeout: float = 5.0,  # noqa: ASYNC109 - its expiry message says where the run is
) -> Run:
    """Wait until run `run_id` is in `state` and return it; some other task (a worker, a
    scheduler) must be moving it.

    On a `FakeClock` it looks again whenever a task goes to sleep on the clock, as the
    worker does after each step; it also looks every 50 ms of real time.

    Raises:
        AssertionError: the run reached a final state other than `state` (it never will).
        TimeoutError: not in `state` after `timeout` real seconds; the message says where
            it is (a retry waits on the fake clock: advance it, or use `run_until_idle`).
        RunNotFoundError: no such run.
    """
    clock = hub.clock
    run = await hub.history.get(run_id)
    try:
        async with asyncio.timeout(timeout):
            while run.state is not state:
                if run.state in FINAL_STATES:
                    raise AssertionError(
                        f"run {run_id} of {run.job!r} ended {run.state.value}, "
                        f"so it will never be {state.value}"
                    )
                if isinstance(clock, FakeClock):
                    await _quiet(clock)
                else:
                    await asyncio.sleep(_BACKSTOP)
                run = await hub.history.get(run_id)
    except TimeoutError:
        due = f", due at {run.run_at.isoformat()}" if run.run_at else ""
        raise TimeoutError(
            f"run {run_id} of {run.job!r} is still {run.state.value}{due} after {timeout:g} s "
            f"(clock at {clock.now().isoformat()}), not {state.value}"
        ) from None
    return run


async def wait_for_workflow(
    hub: Hub,
    workflow_id: str,
    state: WorkflowState | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - its expiry message says where the workflow is
) -> Workflow:
    """Wait until workflow `workflow_id` has finished (succeeded, failed or cancelled, with
    no step still running), in `state` when given, and return it; a worker must be running
    its steps. A failed workflow may resume (a dead step retried), so with `state` it waits
    on through other endings. Looks again as `wait_for_state` does.

    Raises:
        TimeoutError: not finished after `timeout` real seconds; the message lists the
            steps' states.
        WorkflowNotFoundError: no such workflow.
    """
    clock = hub.clock
    workflow = await hub.workflow(workflow_id)
    try:
        async with asyncio.timeout(timeout):
            while workflow.finished_at is None or state not in {None, workflow.state}:
                if isinstance(clock, FakeClock):
                    await _quiet(clock)
                else:
                    await asyncio.sleep(_BACKSTOP)
                workflow = await hub.workflow(workflow_id)
    except TimeoutError:
        steps = ", ".join(f"{s.name} {s.state.value}" for s in workflow.members())
        raise TimeoutError(
            f"workflow {workflow_id} is still {workflow.state.value} after {timeout:g} s: {steps}"
        ) from None
    return workflow
