"""Cancelling running runs end to end, on memory://, a real Redis and PostgreSQL: the handler
is told, stops on its own or is cut off after the grace, and the run ends cancelled exactly
once, never retried."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from hub_scheduler import RetryPolicy, Run, RunState
from hub_scheduler.domain.errors import IllegalTransitionError
from hub_scheduler.domain.model import FINAL_STATES, AttemptOutcome
from hub_scheduler.domain.registry import Job, JobContext
from hub_scheduler.hub import Hub
from hub_scheduler.testing import wait_for_state
from tests.integration.conftest import Target


@pytest.fixture
async def hub(target: Target) -> AsyncIterator[Hub]:
    """A hub on each kind of backend (see `target`)."""
    async with Hub(target.url, prefix=target.prefix) as hub:
        yield hub


async def test_a_cooperative_handler_stops_and_the_run_ends_cancelled(hub: Hub) -> None:
    """The handler sees `ctx.cancelled`, stops at its next `check_cancelled`, and the run
    ends cancelled with one cancelled attempt; its later steps never ran."""
    started = asyncio.Event()
    steps: list[int] = []

    @hub.job("export")
    async def export(ctx: JobContext) -> None:
        for step in range(1000):
            await ctx.check_cancelled()
            steps.append(step)
            started.set()
            await ctx.cancelled.wait()

    run_id = await hub.enqueue("export")
    async with hub.worker():
        await asyncio.wait_for(started.wait(), 5)
        asked = await hub.cancel(run_id)
        run = await wait_for_state(hub, run_id, RunState.CANCELLED)
    assert (asked.state, asked.cancel_requested_at is not None) == (RunState.ACTIVE, True)
    assert steps == [0]
    assert [a.outcome for a in run.attempts] == [AttemptOutcome.CANCELLED]


async def test_a_handler_that_ignores_the_request_is_cut_off_after_the_grace(hub: Hub) -> None:
    """A handler that never looks is cancelled (its task) once the cancel grace ends."""
    started = asyncio.Event()
    cut_off = asyncio.Event()

    @hub.job("stubborn")
    async def stubborn(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cut_off.set()
            raise

    run_id = await hub.enqueue("stubborn")
    async with hub.worker(cancel_grace=timedelta(milliseconds=50)):
        await asyncio.wait_for(started.wait(), 5)
        await hub.cancel(run_id)
        run = await wait_for_state(hub, run_id, RunState.CANCELLED)
    assert cut_off.is_set()
    assert [a.outcome for a in run.attempts] == [AttemptOutcome.CANCELLED]


async def test_a_handler_failing_after_the_request_is_not_retried(hub: Hub) -> None:
    """Failing once told (here: raising its own error) ends the run cancelled, not retried,
    although its policy retries failures."""
    started = asyncio.Event()
    attempts: list[int] = []

    @hub.job("fragile", retry=RetryPolicy(max_retries=3, base_delay=timedelta(0)))
    async def fragile(ctx: JobContext) -> None:
        attempts.append(ctx.attempt)
        started.set()
        await ctx.cancelled.wait()
        raise RuntimeError("interrupted half way")

    run_id = await hub.enqueue("fragile")
    async with hub.worker():
        await asyncio.wait_for(started.wait(), 5)
        await hub.cancel(run_id)
        run = await wait_for_state(hub, run_id, RunState.CANCELLED)
    assert attempts == [1]
    assert run.error is not None
    assert run.error.message == "interrupted half way"


async def test_cancels_racing_completions_end_in_exactly_one_final_state(hub: Hub) -> None:
    """Cancel requests arriving while handlers finish, or before they start: every run ends
    succeeded or cancelled, once; no handler runs twice; none is retried."""
    rng = random.Random(7)
    ran: dict[str, int] = {}
    refused: list[str] = []

    @hub.job("quick", retry=RetryPolicy(max_retries=3, base_delay=timedelta(0)))
    async def quick(ctx: JobContext) -> None:
        ran[ctx.run_id] = ran.get(ctx.run_id, 0) + 1
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        await ctx.check_cancelled()

    ids = await hub.enqueue_many([Job("quick") for _ in range(60)])
    async with hub.worker(concurrency=5):
        for run_id in rng.sample(ids, len(ids)):
            try:
                await hub.cancel(run_id)
            except IllegalTransitionError as exc:  # it succeeded first: refused
                refused.append(exc.current)
            await asyncio.sleep(0)
        runs = [await _final(hub, run_id) for run_id in ids]
    states = {run.state for run in runs}
    assert states <= {RunState.SUCCEEDED, RunState.CANCELLED}
    assert RunState.CANCELLED in states
    assert max(ran.values(), default=0) == 1
    odd = [
        (run.id, run.state.value, run.attempt, [a.outcome.value for a in run.attempts],
         ran.get(run.id, 0))
        for run in runs
        if run.attempt != 1 or len(run.attempts) != (1 if run.id in ran else 0)
    ]  # fmt: skip
    assert odd == []


async def _final(hub: Hub, run_id: str) -> Run:
    """The run once final (the worker moves it); looks every 10 ms, for 5 s at most."""
    run = await hub.history.get(run_id)
    async with asyncio.timeout(5):
        while run.state not in FINAL_STATES:
            await asyncio.sleep(0.01)
            run = await hub.history.get(run_id)
    return run
