"""The worker side of the public broker: taskiq's own Receiver (``taskiq worker``) runs the
runs a hub worker claims under leases.

`ServingExecutor` is the `Executor` of that hub worker: it does not run anything itself, it
hands each claim to the broker's ``listen()`` as a taskiq message. taskiq's Receiver then
runs the task as it always does (dependency injection, middlewares, the ``timeout`` label,
the result backend); `OutcomeMiddleware` turns what happened into the attempt's outcome, and
the end of the Receiver's callback task settles it with the hub worker, which records it
(success, a retry with backoff, or the dead letters) and renews the lease meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

from taskiq import AckableMessage, AsyncBroker, TaskiqMessage, TaskiqMiddleware, TaskiqResult

from hub_scheduler.adapters.taskiq.calls import is_call, message_for
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Claim, ClaimFeed, Failed, Outcome, Succeeded
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.retry import GiveUp

logger = logging.getLogger("hub_scheduler.taskiq")

#: The task name under which plain hub jobs (``@hub.job`` handlers) run on the Receiver.
HUB_JOB_TASK = "hub_scheduler:run_hub_job"


class ServingExecutor:
    """An `Executor` that hands claims to taskiq's Receiver through `messages`."""

    def __init__(self, broker: AsyncBroker, registry: Registry) -> None:
        self._broker = broker
        self._registry = registry
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        self._feed: ClaimFeed | None = None
        self._ready = asyncio.Event()
        self._inflight: dict[str, Claim] = {}
        self._taken: set[str] = set()
        self._outcomes: dict[str, Outcome] = {}
        self._abandoned: set[str] = set()
        self._quiet = asyncio.Event()
        self._quiet.set()

    # --- the Executor port ---------------------------------------------------------------

    async def run(
        self, feed: ClaimFeed, *, concurrency: int, grace: float, stop: asyncio.Event
    ) -> None:
        """See `Executor.run`: once `stop` is set, wait up to `grace` for the runs handed
        to the Receiver to end (the hub worker keeps renewing their leases meanwhile)."""
        del concurrency  # the hub worker claims no more than that
        self._feed = feed
        self._ready.set()
        await stop.wait()
        try:
            await asyncio.wait_for(self._quiet.wait(), grace)
        except TimeoutError:
            logger.warning(
                "%d taskiq tasks still running at the end of the grace", len(self._inflight)
            )

    # --- what the broker's listen() yields -------------------------------------------------

    async def messages(self) -> AsyncGenerator[AckableMessage, None]:
        """Claimed runs as taskiq messages, forever."""
        await self._ready.wait()
        assert self._feed is not None
        while True:
            claim = await self._feed.next_claim()
            run = claim.run
            if is_call(run.payload):
                timeout = self._registry.get(run.job).definition.timeout.total_seconds() \
                    if run.job in self._registry else None  # fmt: skip
                extra: Mapping[str, Any] = {} if timeout is None else {"timeout": timeout}
                message = message_for(run.id, run.job, run.payload, extra)
            else:
                message = TaskiqMessage(
                    task_id=run.id, task_name=HUB_JOB_TASK, labels={}, args=[run.id], kwargs={}
                )
            self._inflight[run.id] = claim
            self._quiet.clear()
            data = self._broker.formatter.dumps(message).message
            yield AckableMessage(data=data, ack=self._acknowledger(run.id))

    def hub_job_task(self) -> Callable[[str], Awaitable[None]]:
        """The taskiq task that runs a plain hub job's handler (with its `JobContext`)."""

        async def run_hub_job(run_id: str) -> None:
            claim = self._inflight[run_id]
            assert self._feed is not None
            self._outcomes[run_id] = await self._feed.execute(claim)

        return run_hub_job

    # --- outcomes --------------------------------------------------------------------------

    def started(self, message: TaskiqMessage) -> None:
        """The Receiver is about to run `message`: settle it when its callback task ends."""
        run_id = message.task_id
        if run_id not in self._inflight:
            return
        self._taken.add(run_id)
        task = asyncio.current_task()
        if task is None:
            return
        task.add_done_callback(lambda done: self._finish(run_id, done))

    def executed(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """What the task did (the Receiver saves the result after this)."""
        claim = self._inflight.get(message.task_id)
        if claim is None or message.task_id in self._outcomes:
            return
        error = result.error if result.is_err else None
        if isinstance(error, asyncio.CancelledError):
            self._abandoned.add(claim.run.id)  # its lease expires; another worker runs it
        elif isinstance(error, BaseException):
            self._outcomes[claim.run.id] = self._failed(claim, ErrorInfo.from_exception(error))
        else:
            self._outcomes[claim.run.id] = Succeeded()

    def _failed(self, claim: Claim, error: ErrorInfo) -> Failed:
        policy = self._registry.retry_policy(claim.run.job)
        if policy is None:
            return Failed(error, GiveUp(claim.run.attempt))
        return Failed(error, policy.decide(claim.run.attempt, self._rng.random()))

    def _finish(self, run_id: str, task: asyncio.Task[Any]) -> None:
        claim = self._inflight.pop(run_id, None)
        self._taken.discard(run_id)
        outcome = self._outcomes.pop(run_id, None)
        abandoned = run_id in self._abandoned
        self._abandoned.discard(run_id)
        if claim is not None and not abandoned and self._feed is not None:
            if outcome is None:
                exc = None if task.cancelled() else task.exception()
                error = (
                    ErrorInfo.from_exception(exc)
                    if exc is not None
                    else ErrorInfo("TaskiqError", "the task ended without an outcome")
                )
                outcome = self._failed(claim, error)
            self._feed.settle(claim, outcome)
        if not self._inflight:
            self._quiet.set()

    def _acknowledger(self, run_id: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            if run_id in self._taken or run_id not in self._inflight:
                return  # settled when its callback task ends
            # The Receiver dropped it without running it: no task by that name, or a
            # message it could not read.
            claim = self._inflight.pop(run_id)
            if not self._inflight:
                self._quiet.set()
            error = ErrorInfo("JobNotFoundError", f"no taskiq task {claim.run.job!r} here")
            if self._feed is not None:
                self._feed.settle(claim, Failed(error, GiveUp(claim.run.attempt)))

        return ack


class OutcomeMiddleware(TaskiqMiddleware):
    """Reports each run's fate to its `ServingExecutor`; the broker puts it first, so it
    sees a message before the other middlewares and the final result after them."""

    def __init__(self, serving: Callable[[], ServingExecutor | None]) -> None:
        super().__init__()
        self._serving = serving

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """Arrange for the run to be settled when its callback ends."""
        serving = self._serving()
        if serving is not None:
            serving.started(message)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """Record the attempt's outcome."""
        serving = self._serving()
        if serving is not None:
            serving.executed(message, result)
