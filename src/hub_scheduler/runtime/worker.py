"""The worker: runs the handlers of runs the queue hands out under leases.

One background task (the pump) talks to the store for the whole worker. Each of its round
trips settles every attempt that finished since the last one and claims as many runs as there
are free slots (`JobQueue.exchange`), so a busy worker pays well under one round trip per job.
Idle, it waits for a wake-up (`Signals`), the next delayed run coming due, or a poll interval,
whichever is first; it never blocks a connection. Other tasks renew the leases of held runs
every third of the lease, recover runs of dead workers, report the worker as alive
(`Presence`) and clean old history. An `Executor` runs the handlers, at most `concurrency` at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import random
import secrets
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    HubSchedulerError,
    ResultError,
    RunCancelledError,
)
from hub_scheduler.domain.model import ErrorInfo, Progress, Run, RunState
from hub_scheduler.domain.ports import (
    Claim,
    Clock,
    Executor,
    Failed,
    JobQueue,
    Notifier,
    Outcome,
    Presence,
    ResultStore,
    RunHistory,
    Signals,
    Succeeded,
    WorkerInfo,
)
from hub_scheduler.domain.registry import JobContext, Registry
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.domain.workflow import Upstream
from hub_scheduler.runtime.tracing import start_process
from hub_scheduler.runtime.waits import Waker, follow
from hub_scheduler.runtime.workflows import WorkflowEngine

logger = logging.getLogger("hub_scheduler.worker")

#: A run whose lease expired this many times is retried as a failed attempt instead.
MAX_STALLS = 1
#: While jobs still run, how long (real seconds) a finished job's outcome may wait for others
#: to share its round trip. Bounds acknowledgement latency; lifts throughput a lot.
FLUSH_WINDOW = 0.002
#: Jobs typically shorter than this (seconds) let the worker claim ahead of its free slots.
SHORT_JOB = 0.02
#: How many batches (of `concurrency` runs) a worker of short jobs holds beyond its running
#: ones. Larger claims per round trip: two batches drained 1.3x as fast as one at
#: concurrency 50, and the same at 5 (bench/worker_profile.py); a held run still starts
#: within about two job durations.
AHEAD_BATCHES = 2
#: Seconds added to each bounded wait while stopping.
STOP_SLACK = 5.0
#: At start, how long (real seconds) to wait for the wake-up subscription before calling the
#: worker started anyway.
SUBSCRIBE_WAIT = 5.0
#: On stop, how long to keep trying to save outcomes of finished jobs (the store may be down).
DRAIN_TIMEOUT = 10.0
#: The shortest gap (real seconds) between two looks for cancel requests: wake-ups come with
#: every enqueue, and a busy queue must not turn each into a round trip.
CANCEL_CHECK_GAP = 0.05


@attrs.frozen
class WorkerSettings:
    """How a worker behaves.

    Attributes:
        concurrency: jobs run at once (and the most runs it ever holds).
        lease: how long a claim lasts without renewal; renewed every third of it.
        grace: on stop, how long running jobs may take to finish.
        poll: the longest an idle worker waits before looking again on its own.
        heartbeat: how often the worker reports itself alive.
        clean_every: how often it removes history older than the retention.
        cancel_grace: how long a handler whose run was cancelled while it ran may take to
            stop on its own (seeing `JobContext.cancelled`) before its task is cancelled.
            Cancel requests are looked for every `poll` while handlers run, and at once
            when the store signals one.
    """

    concurrency: int = 5
    lease: timedelta = timedelta(seconds=30)
    grace: timedelta = timedelta(seconds=30)
    poll: timedelta = timedelta(seconds=1)
    heartbeat: timedelta = timedelta(seconds=5)
    clean_every: timedelta = timedelta(hours=1)
    cancel_grace: timedelta = timedelta(seconds=5)

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.concurrency <= 10_000:
            raise ValueError(f"concurrency must be between 1 and 10000, got {self.concurrency}")
        if self.lease < timedelta(seconds=1):
            raise ValueError("lease must be at least 1 second")


#: What `Worker.execute` answers for a handler it cancelled because the stop grace ended; its
#: claim is handed back (or failed, past `MAX_STALLS`), never settled with this.
_INTERRUPTED = Failed(ErrorInfo("InterruptedError", "the worker stopped"), GiveUp(0))
#: What `Worker.execute` answers for a handler stopped by a cancel request: the run is ended
#: cancelled (`JobQueue.settle_cancelled`), never settled with this.
_CANCELLED = Failed(ErrorInfo("RunCancelledError", "the run was cancelled"), GiveUp(0))


async def _wait_out(task: asyncio.Task[None]) -> None:
    """Await a stopping worker's task to its end even when the caller is cancelled meanwhile
    (its stop is bounded: the grace plus the slacks), so that no handler or loop is left
    running behind; then raise the cancel, or what the task raised."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


def _timeout_error(seconds: float) -> ErrorInfo:
    return ErrorInfo("TimeoutError", f"the attempt ran longer than its {seconds:g} s timeout")


@attrs.define(eq=False)
class Worker:
    """Runs registered jobs from the queue until stopped.

    Use it as an async context manager (``async with hub.worker(): ...``), or `run` it until
    `stop` is called (the CLI does that on SIGTERM/SIGINT).
    """

    queue: JobQueue
    history: RunHistory
    presence: Presence
    registry: Registry
    clock: Clock
    notifier: Notifier
    executor: Executor
    signals: Signals | None = None
    #: Where handlers' return values and progress reports are kept (None: nowhere).
    results: ResultStore | None = None
    settings: WorkerSettings = attrs.field(factory=WorkerSettings)
    retention: timedelta = timedelta(days=90)
    #: Applies workflow events: at once for the steps this worker ends, and in a sweep for
    #: those whose worker died first (None: this worker leaves workflows to others).
    workflows: WorkflowEngine | None = None
    id: str = attrs.field(
        factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    )
    rng: random.Random = attrs.field(factory=random.Random)

    _held: dict[str, Claim] = attrs.field(factory=dict, init=False)
    _ready: deque[Claim] = attrs.field(factory=deque, init=False)
    #: The executor's slots waiting in `next_claim`; the pump hands claims to them directly.
    _waiting: deque[asyncio.Future[Claim]] = attrs.field(factory=deque, init=False)
    #: Outcomes to record, each with when it was handed over (loop time); and how many the
    #: pump's round trip now in flight carries.
    _settle: list[tuple[Claim, Outcome, float]] = attrs.field(factory=list, init=False)
    _settling: int = attrs.field(default=0, init=False)
    #: Runs whose attempt ended and whose end is being recorded: a renewal that finds one
    #: already released has raced its settling, not lost its lease.
    _finishing: set[str] = attrs.field(factory=set, init=False)
    #: Set whenever no outcome waits to be recorded (what a stopping worker waits for).
    _flushed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    #: Handlers running now, by run id (the task running each), and what each took.
    _running: dict[str, asyncio.Task[object]] = attrs.field(factory=dict, init=False)
    #: When each running handler began (loop time), oldest first.
    _began: dict[str, float] = attrs.field(factory=dict, init=False)
    _took: dict[str, float] = attrs.field(factory=dict, init=False)
    #: Runs whose handler the worker cancelled as the stop grace ended, and their claims
    #: once the handler returned (to hand back).
    _interrupting: set[str] = attrs.field(factory=set, init=False)
    _interrupted: list[Claim] = attrs.field(factory=list, init=False)
    #: The context of each running handler; runs told of a cancel request; runs whose handler
    #: the worker cancelled after the cancel grace; the tasks waiting out those graces.
    _contexts: dict[str, JobContext] = attrs.field(factory=dict, init=False)
    _cancelling: set[str] = attrs.field(factory=set, init=False)
    _cutting: set[str] = attrs.field(factory=set, init=False)
    _graces: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)
    _kick: Waker = attrs.field(init=False)
    _cancel_watch: Waker = attrs.field(init=False)
    _claiming: bool = attrs.field(default=True, init=False)
    _closed: bool = attrs.field(default=False, init=False)
    #: Whether the store has this worker's jobs' `max_running` limits (declared at start,
    #: or with the next heartbeat when the store did not answer).
    _limits_declared: bool = attrs.field(default=False, init=False)
    _stop: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list, init=False)
    _side: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)
    _main: asyncio.Task[None] | None = attrs.field(default=None, init=False)
    started: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    #: Moving average of job durations (seconds); starts "long" so nothing is held ahead
    #: until jobs have shown they are short.
    _typical_duration: float = attrs.field(default=1.0, init=False)

    #: Per job name: its handler's logger, whether the handler is a coroutine function, and
    #: the handler these were worked out for.
    _job_loggers: dict[str, tuple[logging.Logger, bool, object]] = attrs.field(
        factory=dict, init=False
    )

    def __attrs_post_init__(self) -> None:
        self._kick = Waker(self.clock)
        self._cancel_watch = Waker(self.clock)
        self._flushed.set()

    # --- what the executor calls (`ClaimFeed`) ---------------------------------------------

    async def next_claim(self) -> Claim:
        """The next claimed run to start, waiting for the pump when none is buffered."""
        if self._ready:
            return self._ready.popleft()
        waiter: asyncio.Future[Claim] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._kick.wake()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed one just as it was cancelled
                self._ready.appendleft(waiter.result())
            else:
                waiter.cancel()
            raise

    def _hand_out(self) -> None:
        """Give buffered claims to the slots waiting for one, oldest waiter first."""
        ready, waiting = self._ready, self._waiting
        while ready and waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(ready.popleft())

    def settle(self, claim: Claim, outcome: Outcome) -> None:
        """Hand an outcome to the pump, which records it in its next round trip.

        The executor's slot is freed at once rather than after the round trip, so outcomes
        of jobs finishing together travel in one batch. A crash in between loses nothing:
        the lease expires and the run is retried, as for a crash during the job.
        """
        if outcome is _INTERRUPTED:
            instead = self._interrupted_outcome(claim)
            if instead is None:
                return
            outcome = instead
        self._finishing.add(claim.run.id)
        if outcome is _CANCELLED:
            self._background(self._settle_cancelled(claim), f"hub-cancel-{claim.run.id}")
            return
        self._settle.append((claim, outcome, asyncio.get_running_loop().time()))
        self._flushed.clear()
        self._kick.wake()

    async def execute(self, claim: Claim) -> Outcome:
        """Run one claimed run's handler, with its timeout; never raises for its errors."""
        trace = start_process(claim.run)  # None unless the application traces (OpenTelemetry)
        if trace is None:
            return await self._execute(claim)
        with trace:
            outcome = await self._execute(claim)
            trace.outcome(outcome)
        await trace.keep_for_retries(claim, outcome, self.queue)
        return outcome

    async def _execute(self, claim: Claim) -> Outcome:
        if claim.run.job not in self.registry:
            error = ErrorInfo("JobNotFoundError", f"no handler for job {claim.run.job!r}")
            return Failed(error, GiveUp(claim.run.attempt))
        job = self.registry.get(claim.run.job)
        definition = job.definition
        known = self._job_loggers.get(definition.name)
        if known is None or known[2] is not job.handler:
            known = (
                logging.getLogger(f"hub_scheduler.jobs.{definition.name}"),
                inspect.iscoroutinefunction(job.handler),
                job.handler,
            )
            self._job_loggers[definition.name] = known
        job_logger, is_coroutine, _ = known
        context = JobContext(
            claim.run,
            claim.token,
            job_logger,
            reporter=self._reporter(claim.run.id, job_logger),
            upstream_reader=self._upstream_reader(claim.run),
        )
        began = asyncio.get_running_loop().time()
        timeout = definition.timeout.total_seconds()
        task = asyncio.current_task()
        self._began[claim.run.id] = began
        if task is not None:
            self._running[claim.run.id] = task
            self._contexts[claim.run.id] = context
        try:
            async with asyncio.timeout(timeout):
                if is_coroutine:
                    value = await job.handler(context)
                else:
                    value = await asyncio.to_thread(job.handler, context)
                    if inspect.isawaitable(value):
                        value = await value
            await self._keep_result(claim.run.id, value, job_logger)
            outcome: Outcome = Succeeded()
        except RunCancelledError:
            outcome = _CANCELLED
        except TimeoutError:
            outcome = Failed(
                _timeout_error(timeout),
                definition.retry.decide(claim.run.attempt, self.rng.random()),
            )
        except Exception as exc:
            decision = definition.retry.decide(claim.run.attempt, self.rng.random())
            outcome = Failed(ErrorInfo.from_exception(exc), decision)
        except asyncio.CancelledError:
            own = self._own_cancel(claim.run.id, task)
            if own is None:
                raise
            outcome = own
        finally:
            self._began.pop(claim.run.id, None)
            self._running.pop(claim.run.id, None)
            self._contexts.pop(claim.run.id, None)
            self._cancelling.discard(claim.run.id)
            self._cutting.discard(claim.run.id)
            took = asyncio.get_running_loop().time() - began
            self._took[claim.run.id] = took
            self._typical_duration += (took - self._typical_duration) / 8
        return outcome

    def _own_cancel(self, run_id: str, task: asyncio.Task[Any] | None) -> Outcome | None:
        """For a handler's task cancelled by the worker itself (no traceback then): what its
        attempt answers. None for a cancel from elsewhere, which goes on up."""
        if task is None:
            return None
        if run_id in self._interrupting:  # the end of the stop grace
            task.uncancel()
            return _INTERRUPTED
        if run_id in self._cutting:  # the end of a cancelled run's cancel grace
            task.uncancel()
            return _CANCELLED
        return None

    async def _keep_result(self, run_id: str, value: object, log: logging.Logger) -> None:
        """Store what a handler returned (nothing for None); a value that cannot be kept is
        logged, and the attempt still succeeds."""
        if value is None or self.results is None:
            return
        try:
            await self.results.set_result(run_id, value)
        except (ResultError, BackendUnavailableError) as exc:
            log.warning("run %s: %s", run_id, exc)

    def _upstream_reader(self, run: Run) -> Callable[[], Awaitable[Mapping[str, Upstream]]] | None:
        engine, workflow_id, step = self.workflows, run.workflow_id, run.workflow_step
        if engine is None or workflow_id is None or step is None:
            return None
        return functools.partial(engine.upstream, workflow_id, step)

    def _advance(self, claims: Sequence[Claim]) -> None:
        """Apply, in the background, the workflow events of steps' runs this worker ended."""
        ids = [c.run.id for c in claims if c.run.workflow_id is not None]
        if ids and self.workflows is not None:
            self._background(self._apply_events(ids), f"hub-workflow-{ids[0]}")

    async def _apply_events(self, run_ids: list[str]) -> None:
        if self.workflows is not None:
            try:
                await self.workflows.apply(run_ids)
            except HubSchedulerError as exc:  # the events stay: a sweep applies them
                logger.warning("worker %s: workflow events left for a sweep: %s", self.id, exc)

    async def _sweep_workflows(self) -> None:
        if self.workflows is not None:
            await self.workflows.sweep()

    def _reporter(
        self, run_id: str, log: logging.Logger
    ) -> Callable[[float | None, str], Awaitable[None]] | None:
        results = self.results
        if results is None:
            return None

        async def report(fraction: float | None, message: str) -> None:
            progress = Progress(self.clock.now(), fraction, message)
            try:
                await results.set_progress(run_id, progress)
            except (ResultError, BackendUnavailableError) as exc:
                log.warning("run %s: progress not kept: %s", run_id, exc)

        return report

    # --- cancelling running runs -----------------------------------------------------------

    def _on_wake(self) -> None:
        """A wake-up from the store: look for work, and for cancel requests."""
        self._kick.wake()
        self._cancel_watch.wake()

    async def _watch_cancels(self) -> None:
        """While handlers run, ask the store every `poll` (and when woken) which of their runs
        were cancelled; tell each handler, and cut it off after the cancel grace."""
        while not self._closed:
            await self._cancel_watch.sleep(self.settings.poll.total_seconds())
            running = [
                self._held[run_id]
                for run_id in self._running
                if run_id in self._held and run_id not in self._cancelling
            ]
            if not running:
                continue
            try:
                asked = await self.queue.cancel_requests(running)
            except HubSchedulerError as exc:
                logger.warning("worker %s: looking for cancel requests failed: %s", self.id, exc)
                asked = []
            except Exception:  # the watch must outlive any one failure
                logger.exception("worker %s: looking for cancel requests failed", self.id)
                asked = []
            for run_id in asked:
                self._request_cancel(run_id)
            await asyncio.sleep(CANCEL_CHECK_GAP)

    def _request_cancel(self, run_id: str) -> None:
        task = self._running.get(run_id)
        context = self._contexts.get(run_id)
        if task is None or context is None or run_id in self._cancelling:
            return
        self._cancelling.add(run_id)
        context.cancelled.set()
        grace = self.settings.cancel_grace.total_seconds()
        logger.info("job %s run %s was cancelled; its handler has %g s to stop",
                    context.run.job, run_id, grace)  # fmt: skip
        waiting = asyncio.create_task(self._cut_off(run_id, task, grace), name=f"hub-cut-{run_id}")
        self._graces.add(waiting)
        waiting.add_done_callback(self._graces.discard)

    async def _cut_off(self, run_id: str, task: asyncio.Task[object], grace: float) -> None:
        await self.clock.sleep(grace)
        if self._running.get(run_id) is task:
            logger.warning("run %s: its handler did not stop within %g s of the cancel; "
                           "cancelling it", run_id, grace)  # fmt: skip
            self._cutting.add(run_id)
            task.cancel()

    async def _settle_cancelled(self, claim: Claim) -> None:
        """End a run cancelled while it ran. If the store cannot be told, the lease runs out
        and the reaper ends it cancelled (the request is stored with the run)."""
        try:
            run = await self.queue.settle_cancelled(claim)
        except HubSchedulerError as exc:
            logger.warning("worker %s: run %s: cancel not recorded (%s); its lease will run out",
                           self.id, claim.run.id, exc)  # fmt: skip
        else:
            if run is not None:
                logger.info("job %s run %s cancelled (attempt %d)", claim.run.job, claim.run.id,
                            claim.run.attempt)  # fmt: skip
                self._advance([claim])
        finally:
            self._held.pop(claim.run.id, None)
            self._took.pop(claim.run.id, None)
            self._kick.wake()

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` beside the pump (an alert, a cancel to record); a stopping worker waits
        for these before it returns."""
        task = asyncio.create_task(work, name=name)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    def _interrupted_outcome(self, claim: Claim) -> Outcome | None:
        """What becomes of a run whose handler was cancelled at the end of the stop grace:
        None when it is to be handed back at once (a stall counted); a failed attempt, per
        the job's retry policy, when it stalled `MAX_STALLS` times already."""
        self._took.pop(claim.run.id, None)
        if claim.run.stalls < MAX_STALLS:
            self._interrupted.append(claim)
            return None
        error = ErrorInfo(
            "StalledError",
            f"its worker stopped before it finished, after {claim.run.stalls} earlier stalls",
        )
        policy = self.registry.retry_policy(claim.run.job)
        decision = policy.decide(claim.run.attempt, self.rng.random()) if policy else None
        return Failed(error, decision or GiveUp(claim.run.attempt))

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        self._main = asyncio.create_task(self.run(), name=f"hub-worker-{self.id}")
        started = asyncio.create_task(self.started.wait())
        try:
            done, _ = await asyncio.wait({self._main, started}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # e.g. a timeout around `async with` while starting
            started.cancel()
            self.stop()
            await _wait_out(self._main)
            raise
        if self._main in done:
            started.cancel()
            await self._main  # re-raise the startup failure
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        if self._main is not None:
            await _wait_out(self._main)

    def stop(self) -> None:
        """Ask the worker to stop: no new claims; running jobs get `grace` to finish."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        """True from start until stopped while every loop of the worker runs, whether or not
        the store answers (the loops wait for it): what a liveness probe asks."""
        return self.started.is_set() and not self._closed and not any(t.done() for t in self._tasks)

    @property
    def stopping(self) -> bool:
        """True once asked to stop (it takes no new work)."""
        return self._stop.is_set()

    async def run(self) -> None:
        """Work until `stop`: claim, run, settle; then hand back what never started."""
        finish = asyncio.Event()
        grace = self.settings.grace.total_seconds()
        with contextlib.suppress(HubSchedulerError):  # else with the next heartbeat
            await self._declare_limits()  # before the first claim
        pump = asyncio.create_task(self._pump(), name="hub-pump")
        self._tasks = [
            pump,
            asyncio.create_task(
                self._every(self.settings.lease / 3, self._renew), name="hub-renew"
            ),
            asyncio.create_task(self._every(self.settings.lease / 3, self._reap), name="hub-reap"),
            asyncio.create_task(
                self._every(self.settings.heartbeat, self._heartbeat), name="hub-heartbeat"
            ),
            asyncio.create_task(
                self._every(self.settings.clean_every, self._clean), name="hub-clean"
            ),
        ]
        self._tasks.append(asyncio.create_task(self._watch_cancels(), name="hub-cancels"))
        if self.workflows is not None:
            sweep = self._every(self.settings.poll * 2, self._sweep_workflows)
            self._tasks.append(asyncio.create_task(sweep, name="hub-workflows"))
        subscribed = asyncio.Event()
        if self.signals is not None:
            follower = follow(self.signals.wakeups, self._on_wake, self._stop, what="wake-up",
                              subscribed=subscribed)  # fmt: skip
            self._tasks.append(asyncio.create_task(follower, name="hub-wake"))
        executing = self.executor.run(
            self, concurrency=self.settings.concurrency, grace=grace, stop=finish
        )
        listening = asyncio.create_task(executing, name="hub-executor")
        logger.info("worker %s started (concurrency %d)", self.id, self.settings.concurrency)
        with contextlib.suppress(HubSchedulerError):
            await self._heartbeat()  # be listed as live at once, not after the first period
        if self.signals is not None:
            # Started means an enqueue from now on wakes it; a store that does not answer
            # holds the start up no longer than this (polling finds the work meanwhile).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SUBSCRIBE_WAIT):
                    await subscribed.wait()
        self.started.set()
        try:
            await self._stop.wait()
        finally:
            self._claiming = False
            finish.set()
            # Every wait below is bounded: on Python 3.11, a driver's use of asyncio.wait_for
            # can swallow a cancellation (cpython#86296), so a stop must never hinge on one.
            await asyncio.wait({listening}, timeout=grace + STOP_SLACK)
            await self._interrupt()
            listening.cancel()
            await self._drain()
            if self._side:
                await asyncio.wait(set(self._side), timeout=STOP_SLACK)
            self._closed = True
            for task in [*self._tasks, *self._graces]:
                task.cancel()
            await asyncio.wait(self._tasks, timeout=STOP_SLACK)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_SLACK):
                    await self.presence.worker_stopped(self.id)
            logger.info("worker %s stopped", self.id)

    async def _interrupt(self) -> None:
        """Cancel the handlers still running once the grace is over, so that their runs are
        handed back now (another worker restarts them at once) rather than left active
        until a reaper finds their lease expired."""
        running = dict(self._running)
        if not running:
            return
        self._interrupting.update(running)
        for run_id, task in running.items():
            claim = self._held.get(run_id)
            logger.warning(
                "job %s run %s was still running when the stop grace ended; handed back",
                claim.run.job if claim else "?",
                run_id,
            )
            task.cancel()
        # A handler that swallows the cancellation is left behind: its run is handed back too.
        await asyncio.wait(set(running.values()), timeout=STOP_SLACK)

    async def _drain(self) -> None:
        """Settle what finished, hand back what was claimed but never started, and what was
        interrupted at the end of the grace (a stall counted)."""
        unstarted = list(self._ready)
        self._ready.clear()
        for claim in unstarted:
            self._held.pop(claim.run.id, None)
        if not self._flushed.is_set():
            self._kick.wake()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT):
                    await self._flushed.wait()
            late = len(self._settle) + self._settling
            if late:
                logger.warning("worker %s stopped with %d outcomes unsaved", self.id, late)
        stuck = [self._held[i] for i in self._running if i in self._held]
        interrupted = self._interrupted + [c for c in stuck if c not in self._interrupted]
        for claim in interrupted:
            self._held.pop(claim.run.id, None)
        with contextlib.suppress(HubSchedulerError):
            await self.queue.hand_back(unstarted)
        with contextlib.suppress(HubSchedulerError):
            await self.queue.hand_back(interrupted, interrupted=True)

    # --- background tasks ------------------------------------------------------------------

    async def _pump(self) -> None:
        """The one loop that talks to the store for claims and settlements."""
        backoff = 0.05
        wait: float | None = None  # None: go again at once
        while not self._closed:
            if wait is not None:
                await self._kick.sleep(wait)
            self._kick.clear()
            if await self._gather_outcomes():
                continue
            batch, self._settle = self._settle, []
            want = self._want(len(batch))
            if not batch and want <= 0:
                wait = self.settings.poll.total_seconds()
                continue
            self._settling = len(batch)
            try:
                result = await self.queue.exchange(
                    self.id, [(c, o) for c, o, _ in batch], max(want, 0), self.settings.lease
                )
            except BackendUnavailableError as exc:
                self._settling = 0
                self._settle = batch + self._settle
                logger.warning(
                    "worker %s: store unavailable (%s); retry in %.2fs", self.id, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                wait = None
                continue
            except Exception:
                # Never let the one loop that feeds the worker die: log, back off, go on.
                self._settling = 0
                self._settle = batch + self._settle
                logger.exception("worker %s: unexpected error talking to the store", self.id)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                wait = None
                continue
            backoff = 0.05
            self._settling = 0
            if batch:
                self._settled(batch, result.applied)
            if not self._settle:
                self._flushed.set()
            held = self._held
            for claim in result.claims:
                held[claim.run.id] = claim
            self._ready.extend(result.claims)
            self._hand_out()
            busy = bool(self._settle or result.claims)
            wait = None if busy else self._idle_wait(result.next_due)

    def _want(self, settling: int) -> int:
        """How many runs to claim with `settling` outcomes on their way to the store (0 or
        less: none)."""
        if not self._claiming:
            return 0
        # Short jobs: also hold batches ahead, so the executor never waits on the store. They
        # start within milliseconds; long jobs never get claims held ahead, nor do short ones
        # while a handler has run longer than a short job (the jobs may have changed).
        short = self._typical_duration < SHORT_JOB and not (
            self._began
            and asyncio.get_running_loop().time() - next(iter(self._began.values())) >= SHORT_JOB
        )
        ahead = AHEAD_BATCHES * self.settings.concurrency if short else 0
        return self.settings.concurrency + ahead - (len(self._held) - settling)

    async def _gather_outcomes(self) -> bool:
        """While other jobs are still running, let outcomes collect for up to `FLUSH_WINDOW`
        so they share one round trip. True when the pump should look again first."""
        if not self._settle:
            return False
        running = len(self._held) - len(self._ready) - len(self._settle)
        if running <= 0 or not self._ready:  # all done, or the executor is about to starve
            return False
        waited = asyncio.get_running_loop().time() - self._settle[0][2]
        if waited >= FLUSH_WINDOW:
            return False
        # asyncio.timeout, not wait_for: no task per wait (wait_for makes one on 3.11).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_WINDOW - waited):
                await self._kick.event.wait()
        return True

    def _settled(
        self,
        batch: list[tuple[Claim, Outcome, float]],
        applied: tuple[bool, ...],
    ) -> None:
        """Release the settled claims: log them, alert dead runs."""
        for (claim, outcome, _), done in zip(batch, applied, strict=True):
            self._held.pop(claim.run.id, None)
            took = self._took.pop(claim.run.id, None)
            if done:
                self._log_outcome(claim, outcome, took)
            if done and isinstance(outcome, Failed) and isinstance(outcome.decision, GiveUp):
                self._alert_dead(claim)
        self._advance([
            c for (c, o, _), done in zip(batch, applied, strict=True)
            if done and not (isinstance(o, Failed) and not isinstance(o.decision, GiveUp))
        ])  # fmt: skip

    def _log_outcome(self, claim: Claim, outcome: Outcome, took: float | None) -> None:
        """One WARNING line per failed attempt (job, run, attempt, when the next one is due)
        and one INFO line per finished run (job, run, how it ended, duration)."""
        run = claim.run
        lasted = "" if took is None else f" in {took:.3f} s"
        if isinstance(outcome, Succeeded):
            logger.info("job %s run %s succeeded%s (attempt %d)", run.job, run.id, lasted,
                        run.attempt)  # fmt: skip
            return
        error = f"{outcome.error.type}: {outcome.error.message}"
        decision = outcome.decision
        if isinstance(decision, GiveUp):
            logger.warning(
                "job %s run %s attempt %d failed%s: %s; no attempt left, moved to the dead "
                "letters", run.job, run.id, run.attempt, lasted, error,
            )  # fmt: skip
            logger.info("job %s run %s finished dead after %d attempts%s", run.job, run.id,
                        run.attempt, lasted)  # fmt: skip
            return
        due = self.clock.now() + decision.delay
        logger.warning(
            "job %s run %s attempt %d failed%s: %s; attempt %d at %s (in %.3g s)",
            run.job, run.id, run.attempt, lasted, error, decision.attempt,
            due.isoformat(timespec="milliseconds"), decision.delay.total_seconds(),
        )  # fmt: skip

    def _idle_wait(self, next_due: datetime | None) -> float:
        """Seconds to idle: until the next delayed run is due, at most `poll`."""
        poll = self.settings.poll.total_seconds()
        if next_due is None:
            return poll
        return max(0.0, min(poll, (next_due - self.clock.now()).total_seconds()))

    async def _every(self, period: timedelta, action: Callable[[], Awaitable[None]]) -> None:
        while not self._stop.is_set():
            await self.clock.sleep(period.total_seconds())
            try:
                await action()
            except HubSchedulerError as exc:
                logger.warning("worker %s: %s failed: %s", self.id, action.__name__, exc)
            except Exception:  # a maintenance loop must outlive any one failure
                logger.exception("worker %s: %s failed", self.id, action.__name__)

    async def _renew(self) -> None:
        claims = list(self._held.values())
        lost = await self.queue.renew(self.id, claims, self.settings.lease)
        for run_id in lost:
            # Settled (or being settled) meanwhile: the store released it, nobody took it.
            if run_id in self._held and run_id not in self._finishing:
                logger.warning("worker %s lost the lease of run %s", self.id, run_id)
        self._finishing = {run_id for run_id in self._finishing if run_id in self._held}

    async def _reap(self) -> None:
        requeued, held = await self.queue.reap(MAX_STALLS, self.settings.lease)
        for run_id in requeued:
            logger.warning("run %s stalled (its worker stopped renewing); requeued", run_id)
        settled = [
            (claim, Failed.stalled(claim.run, self.registry.retry_policy(claim.run.job),
                                   self.rng.random()))
            for claim in held
        ]  # fmt: skip
        if settled:
            result = await self.queue.exchange("reaper", settled, 0, self.settings.lease)
            for (claim, outcome), applied in zip(settled, result.applied, strict=True):
                if applied:
                    self._log_outcome(claim, outcome, None)
                if applied and isinstance(outcome.decision, GiveUp):
                    self._alert_dead(claim)

    async def _declare_limits(self) -> None:
        limits = {job.definition.name: job.definition.limits for job in self.registry}
        await self.queue.set_limits(limits)
        self._limits_declared = True

    async def _heartbeat(self) -> None:
        if not self._limits_declared:
            await self._declare_limits()
        info = WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.settings.concurrency,
            active=len(self._held),
            seen_at=self.clock.now(),
        )
        await self.presence.worker_seen(info, self.settings.heartbeat * 3)

    async def _clean(self) -> None:
        removed = await self.history.clean(self.clock.now() - self.retention)
        if removed:
            logger.info("cleaned %d runs older than %s", removed, self.retention)

    def _alert_dead(self, claim: Claim) -> None:
        """Tell the notifier about a dead run in the background (the pump goes on); a stopping
        worker waits for these before it returns, so no alert is cut off."""
        self._background(self._notify_dead(claim), f"hub-alert-{claim.run.id}")

    async def _notify_dead(self, claim: Claim) -> None:
        try:
            run = await self.history.get(claim.run.id)
        except HubSchedulerError:
            run = attrs.evolve(claim.run, state=RunState.DEAD)
        try:
            await self.notifier.run_dead(run)
        except Exception:  # a notifier must never take the worker down
            logger.exception("notifier failed for dead run %s", run.id)
