"""The worker's handlers run on taskiq's `Receiver`: its concurrency cap and graceful stop.

`TaskiqExecutor` is the `Executor` the hub's worker uses by default. A tiny in-process broker
turns each claim the worker hands out into a taskiq message; the Receiver runs the registered
task, which calls back into the worker (`ClaimFeed.execute`), and its acknowledgement hands the
outcome to the worker (`ClaimFeed.settle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable

import attrs
from taskiq import AckableMessage, AsyncBroker, BrokerMessage
from taskiq.message import TaskiqMessage
from taskiq.receiver import Receiver

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Claim, ClaimFeed, Failed, Outcome
from hub_scheduler.domain.retry import GiveUp


class _FeedBroker(AsyncBroker):
    """A taskiq broker over one worker's claims; it cannot enqueue."""

    def __init__(self, feed: ClaimFeed) -> None:
        super().__init__()
        self._feed = feed
        self._claims: dict[str, Claim] = {}
        self._outcomes: dict[str, Outcome] = {}

    async def kick(self, message: BrokerMessage) -> None:
        """Enqueueing goes through `Hub.enqueue`, not taskiq's kicker."""
        raise HubSchedulerError(f"use Hub.enqueue to enqueue {message.task_name!r}")

    async def listen(self) -> AsyncGenerator[bytes | AckableMessage, None]:
        """Yield claimed runs as taskiq messages, forever."""
        while True:
            claim = await self._feed.next_claim()
            self._claims[claim.run.id] = claim
            message = TaskiqMessage(
                task_id=claim.run.id,
                task_name=claim.run.job,
                labels={},
                args=[claim.run.id],
                kwargs={},
            )
            data = self.formatter.dumps(message).message
            yield AckableMessage(data=data, ack=self._acknowledger(claim))

    def task_function(self) -> Callable[[str], Awaitable[None]]:
        """A task function (one per job name: taskiq decorates what it registers)."""

        async def execute(run_id: str) -> None:
            self._outcomes[run_id] = await self._feed.execute(self._claims[run_id])

        return execute

    def _acknowledger(self, claim: Claim) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            self._claims.pop(claim.run.id, None)
            outcome = self._outcomes.pop(claim.run.id, None)
            if outcome is None:  # the Receiver could not run it (no task by that name)
                error = ErrorInfo("JobNotFoundError", f"no handler for job {claim.run.job!r}")
                outcome = Failed(error, GiveUp(claim.run.attempt))
            self._feed.settle(claim, outcome)

        return ack


@attrs.frozen
class TaskiqExecutor:
    """`Executor` on taskiq's Receiver, for the job names in `jobs`."""

    jobs: tuple[str, ...]

    async def run(
        self, feed: ClaimFeed, *, concurrency: int, grace: float, stop: asyncio.Event
    ) -> None:
        """See `Executor.run`."""
        broker = _FeedBroker(feed)
        broker.is_worker_process = True
        for name in self.jobs:
            broker.register_task(broker.task_function(), task_name=name)
        receiver = Receiver(
            broker,
            max_async_tasks=concurrency,
            max_prefetch=0,
            validate_params=False,
            run_startup=False,
            wait_tasks_timeout=grace,
            propagate_exceptions=False,
        )
        await receiver.listen(stop)
