"""The worker's default `Executor`: runs the registered handlers in this process.

`InlineExecutor` keeps `concurrency` long-lived slot tasks; each takes the next claim from the
worker (`ClaimFeed.next_claim`), runs it (`ClaimFeed.execute`, which applies the job's
timeout and answers cancels) and hands its outcome back (`ClaimFeed.settle`). No task, no
message and no timer is made per job: that is most of what a short job used to cost.

A handler runs in its slot's task, so a context variable it sets is still set for the next
job that slot runs (set them inside the handler, or reset them before returning).
"""

from __future__ import annotations

import asyncio
import logging

import attrs

from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Claim, ClaimFeed, Failed, Outcome
from hub_scheduler.domain.retry import GiveUp

logger = logging.getLogger("hub_scheduler.worker")


@attrs.frozen
class InlineExecutor:
    """`Executor` that runs handlers directly, at most `concurrency` at once."""

    async def run(
        self, feed: ClaimFeed, *, concurrency: int, grace: float, stop: asyncio.Event
    ) -> None:
        """See `Executor.run`. Slots waiting for a claim end at once when `stop` is set;
        running ones get `grace` seconds, then the worker cuts them off (it cancels their
        handlers and hands their runs back)."""
        idle: set[asyncio.Task[None]] = set()
        slots = [
            asyncio.create_task(_slot(feed, stop, idle), name=f"hub-slot-{n}")
            for n in range(concurrency)
        ]
        try:
            await stop.wait()
        finally:
            # A slot waiting for a claim has none: end it (a claim it was just woken for stays
            # buffered, and the worker hands it back). Busy slots stop after their job.
            for slot in idle:
                slot.cancel()
        busy = {slot for slot in slots if not slot.done()}
        if busy:
            await asyncio.wait(busy, timeout=grace)
        still = sum(not slot.done() for slot in slots)
        if still:
            logger.debug("%d handlers still running at the end of the grace", still)


async def _slot(feed: ClaimFeed, stop: asyncio.Event, idle: set[asyncio.Task[None]]) -> None:
    """Take, run and settle claims one after another until `stop` is set."""
    me = asyncio.current_task()
    assert me is not None  # always in a task
    while not stop.is_set():
        idle.add(me)
        try:
            claim = await feed.next_claim()
        finally:
            idle.discard(me)
        # Claimed is held: run it even when the stop came meanwhile (it gets the grace).
        feed.settle(claim, await _execute(feed, claim))


async def _execute(feed: ClaimFeed, claim: Claim) -> Outcome:
    try:
        return await feed.execute(claim)
    except Exception as exc:  # `execute` answers handler errors; this is a bug around it
        logger.exception("run %s: the worker failed to run it", claim.run.id)
        return Failed(ErrorInfo.from_exception(exc), GiveUp(claim.run.attempt))
