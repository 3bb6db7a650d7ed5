"""A property test of workflows (issue 16): random DAGs of chains and groups, random
failures, dead-letter retries, duplicated and dropped event applications by several engines:
every step starts only once its inputs are final, no decision starts a step twice, and once
every dead run is retried to success the workflow has succeeded with each step run once.

It runs the real engine on the real Redis adapter (memory://, its Lua included) under a fake
clock; the contract suite runs the same engine on every backend."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub_scheduler.domain.model import ErrorInfo, RunState, RunTrigger
from hub_scheduler.domain.ports import Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.domain.workflow import (
    DONE,
    FailurePolicy,
    Flow,
    StepState,
    Workflow,
    WorkflowState,
    chain,
    group,
    new_workflow_id,
    step,
)
from hub_scheduler.hub import Hub
from hub_scheduler.runtime.workflows import WorkflowEngine
from hub_scheduler.testing import FakeClock

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")
JOBS = ("a", "b", "c")

flows: st.SearchStrategy[Flow] = st.recursive(
    st.sampled_from(JOBS).map(step),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda items: chain(*items)),
        st.tuples(st.lists(inner, min_size=1, max_size=3), st.none() | inner).map(
            lambda parts: group(*parts[0], then=parts[1])
        ),
    ),
    max_leaves=10,
)


def _engines(hub: Hub, n: int) -> list[WorkflowEngine]:
    backend = hub.backend
    return [
        WorkflowEngine(
            backend.workflows, hub.queue, hub.history, hub.registry, hub.clock, backend.results
        )
        for _ in range(n)
    ]


async def _check_inputs_final(hub: Hub, workflow_id: str, name: str, policy: FailurePolicy) -> None:
    doc, _ = await hub.backend.workflows.get(workflow_id)
    member = doc.get(name)
    assert member is not None
    for dep in member.after:
        dep_step = doc.get(dep)
        assert dep_step is not None
        assert dep_step.state in DONE, f"{name} started while {dep} was {dep_step.state}"
        if policy is not FailurePolicy.CONTINUE:
            assert dep_step.state is StepState.SUCCEEDED


async def _sweep_all(hub: Hub, engines: list[WorkflowEngine]) -> int:
    """Let the grace pass, then every engine sweeps; how many events they found."""
    assert isinstance(hub.clock, FakeClock)
    hub.clock.advance(timedelta(seconds=3))
    return sum([await e.sweep() for e in engines])


async def _apply_randomly(
    rng: random.Random, engines: list[WorkflowEngine], ids: list[str]
) -> None:
    """Nobody applies (every applier crashed), several race (in any order), or one does."""
    roll = rng.random()
    if roll < 0.15:
        return
    if roll < 0.5:
        shuffled = [rng.sample(ids, len(ids)) for _ in engines]
        await asyncio.gather(*(e.apply(i) for e, i in zip(engines, shuffled, strict=True)))
        return
    await engines[rng.randrange(len(engines))].apply(ids)


async def _turbulent(
    hub: Hub, engines: list[WorkflowEngine], workflow: Workflow, rng: random.Random
) -> list[str]:
    """Run steps with random deaths, applications and dead-letter retries; returns the runs
    still dead."""
    dead: list[str] = []
    for _ in range(200):
        claims = await hub.queue.claim("w", rng.randint(1, 4), LEASE)
        if not claims and not dead:
            if not await _sweep_all(hub, engines):
                break
            continue
        for claim in claims:
            await _check_inputs_final(
                hub, workflow.id, claim.run.workflow_step or "", workflow.policy
            )
            if rng.random() < 0.25:
                await hub.queue.finish(claim, Failed(BOOM, GiveUp(claim.run.attempt)))
                dead.append(claim.run.id)
            else:
                await hub.backend.results.set_result(claim.run.id, claim.run.workflow_step)
                await hub.queue.finish(claim, Succeeded())
        await _apply_randomly(rng, engines, [c.run.id for c in claims])
        if dead and rng.random() < 0.4:
            await hub.dead_letters.retry(dead.pop(rng.randrange(len(dead))))
    return dead


async def _heal(
    hub: Hub, engines: list[WorkflowEngine], workflow: Workflow, dead: list[str]
) -> None:
    """Retry what died, run the rest to success, sweep until nothing moves."""
    for _ in range(100):
        for run_id in dead:
            await hub.dead_letters.retry(run_id)
        dead.clear()
        claims = await hub.queue.claim("w", 10, LEASE)
        for claim in claims:
            await _check_inputs_final(
                hub, workflow.id, claim.run.workflow_step or "", workflow.policy
            )
            await hub.backend.results.set_result(claim.run.id, claim.run.workflow_step)
            await hub.queue.finish(claim, Succeeded())
        await engines[0].apply([c.run.id for c in claims])
        if not claims and not await _sweep_all(hub, engines):
            return


async def _scenario(flow: Flow, policy: FailurePolicy, seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    async with Hub("memory://", clock=clock) as hub:
        engines = _engines(hub, 3)
        workflow = Workflow.new(new_workflow_id(), flow, clock.now(), policy=policy)
        await engines[0].start(workflow)
        await _heal(hub, engines, workflow, await _turbulent(hub, engines, workflow, rng))
        final, _ = await hub.backend.workflows.get(workflow.id)
        first_runs = Counter(
            run.workflow_step
            for run in (await hub.history.list(limit=500)).items
            if run.trigger is RunTrigger.WORKFLOW
        )
        assert all(n == 1 for n in first_runs.values()), first_runs
        assert set(first_runs) == {s.name for s in final.steps}
        assert final.state is WorkflowState.SUCCEEDED, [(s.name, s.state) for s in final.steps]
        for member in final.steps:
            current = await hub.history.get(member.run_id or "")
            assert current.state is RunState.SUCCEEDED


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=flows, policy=st.sampled_from([FailurePolicy.FAIL, FailurePolicy.CONTINUE]),
       seed=st.integers(0, 2**32))  # fmt: skip
def test_every_step_runs_once_its_inputs_are_final(
    flow: Flow, policy: FailurePolicy, seed: int
) -> None:
    asyncio.run(_scenario(flow, policy, seed))
