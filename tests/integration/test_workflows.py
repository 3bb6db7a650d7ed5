"""Workflows end to end with a real worker, on memory://, a real Redis and PostgreSQL: a
chain passes results, a group's callback fans in, a dead step compensates once and resumes
from the dead-letter queue, cancelling stops a running step and skips the rest."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

from hub_scheduler import (
    FailurePolicy,
    RetryPolicy,
    RunState,
    StepState,
    WorkflowState,
    chain,
    group,
    step,
)
from hub_scheduler.domain.errors import JobNotFoundError
from hub_scheduler.domain.ports import Succeeded, Workflows
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.domain.workflow import Workflow
from hub_scheduler.hub import Hub
from hub_scheduler.testing import FakeClock, wait_for_state, wait_for_workflow
from tests.integration.conftest import Target

POLL = timedelta(milliseconds=100)


@pytest.fixture
async def hub(target: Target) -> AsyncIterator[Hub]:
    """A hub on each kind of backend (see `target`)."""
    async with Hub(target.url, prefix=target.prefix) as hub:
        yield hub


async def test_a_chain_of_a_group_passes_results_to_the_callback(hub: Hub) -> None:
    ran: Counter[str] = Counter()
    seen: dict[str, Any] = {}

    @hub.job("fetch")
    async def fetch(ctx: JobContext) -> dict[str, int]:
        ran[ctx.step or ""] += 1
        return {"rows": ctx.payload["rows"]}

    @hub.job("resize")
    async def resize(ctx: JobContext) -> int:
        ran[ctx.step or ""] += 1
        upstream = await ctx.upstream()
        return int(upstream["fetch"]["rows"]) * int(ctx.payload["factor"])

    @hub.job("report")
    async def report(ctx: JobContext) -> None:
        ran[ctx.step or ""] += 1
        seen.update(await ctx.upstream())

    flow = chain(
        step("fetch", {"rows": 3}),
        group(step("resize", {"factor": 2}, name="small"), step("resize", {"factor": 10})),
        "report",
    )
    workflow = await hub.start_workflow(flow, name="thumbnails")
    async with hub.worker(concurrency=5, poll=POLL):
        await wait_for_workflow(hub, workflow.id, WorkflowState.SUCCEEDED, timeout=20)
    assert seen == {"small": 6, "resize": 30}
    assert ran == {"fetch": 1, "small": 1, "resize": 1, "report": 1}


async def test_a_dead_step_compensates_once_and_resumes_from_the_dlq(hub: Hub) -> None:
    healthy = asyncio.Event()
    compensated: list[str] = []

    @hub.job("charge", retry=RetryPolicy.none())
    async def charge(ctx: JobContext) -> str:
        if not healthy.is_set():
            raise RuntimeError("card declined")
        return "paid"

    @hub.job("ship")
    async def ship(ctx: JobContext) -> str:
        return f"shipped after {(await ctx.upstream())['charge']}"

    @hub.job("refund")
    async def refund(ctx: JobContext) -> None:
        compensated.append(ctx.workflow_id or "")

    workflow = await hub.start_workflow(
        chain("charge", "ship"), on_failure=FailurePolicy.COMPENSATE, compensate=step("refund")
    )
    async with hub.worker(poll=POLL):
        failed = await wait_for_workflow(hub, workflow.id, WorkflowState.FAILED, timeout=20)
        assert failed.state is WorkflowState.FAILED
        assert [s.state for s in failed.steps] == [StepState.DEAD, StepState.BLOCKED]
        assert compensated == [workflow.id]
        healthy.set()
        retried = await hub.dead_letters.retry(failed.steps[0].run_id or "")
        await wait_for_state(hub, retried, RunState.SUCCEEDED, timeout=20)
        resumed = await wait_for_workflow(hub, workflow.id, WorkflowState.SUCCEEDED, timeout=20)
    assert resumed.state is WorkflowState.SUCCEEDED
    ship_run = resumed.get("ship")
    assert ship_run is not None
    assert await hub.result(ship_run.run_id or "") == "shipped after paid"
    assert compensated == [workflow.id]


async def test_cancelling_stops_the_running_step_and_skips_the_rest(hub: Hub) -> None:
    started = asyncio.Event()

    @hub.job("export")
    async def export(ctx: JobContext) -> None:
        started.set()
        await ctx.cancelled.wait()
        await ctx.check_cancelled()

    @hub.job("notify")
    async def notify(ctx: JobContext) -> None:
        raise AssertionError("a cancelled workflow's later step ran")

    workflow = await hub.start_workflow(chain("export", "notify"))
    async with hub.worker(poll=POLL):
        await asyncio.wait_for(started.wait(), 20)
        await hub.cancel_workflow(workflow.id)
        done = await wait_for_workflow(hub, workflow.id, timeout=20)
    assert done.state is WorkflowState.CANCELLED
    assert [s.state for s in done.steps] == [StepState.CANCELLED, StepState.SKIPPED]


async def test_a_workflow_of_unknown_jobs_is_refused_before_anything_runs(hub: Hub) -> None:
    @hub.job("known")
    async def known(ctx: JobContext) -> None:
        del ctx

    with pytest.raises(JobNotFoundError, match="typo"):
        await hub.start_workflow(chain("known", "typo"))
    assert (await hub.admin.workflows()).items == ()
    assert (await hub.queue.snapshot()).waiting == 0


@attrs.define
class _AlwaysBeaten:
    """A `Workflows` store where another applier always saved first."""

    inner: Workflows
    saves: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def save(self, workflow: Workflow, version: int) -> bool:
        del workflow, version
        self.saves += 1
        return False


async def test_an_event_lost_to_contention_stays_for_a_sweep(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When every save loses the race, the event is not acknowledged (a warning says so);
    a later sweep, uncontended, applies it and the next step starts."""
    clock = FakeClock()
    async with Hub("memory://", clock=clock) as hub:
        hub.job("a")(_nothing)
        hub.job("b")(_nothing)
        workflow = await hub.start_workflow(chain("a", "b"))
        [claim] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
        await hub.queue.finish(claim, Succeeded())
        beaten = _AlwaysBeaten(hub.backend.workflows)
        contended = attrs.evolve(hub.workflows, workflows=beaten)
        await contended.apply([claim.run.id])
        assert beaten.saves > 1
        assert "left for a sweep" in caplog.text
        clock.advance(timedelta(seconds=3))
        assert claim.run.id in await hub.backend.workflows.events(clock.now())
        assert await hub.workflows.sweep() == 1
        [second] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
        assert (second.run.workflow_id, second.run.workflow_step) == (workflow.id, "b")


async def _nothing(ctx: JobContext) -> None:
    del ctx
