"""Workflows on every backend: documents saved under a version, events recorded in the same
step that ends a workflow step's run, and the engine over them (chains pass results, groups
fan in, a dead step resumes from the dead-letter queue, each step runs once however many
appliers race)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import InvalidCursorError, WorkflowNotFoundError
from hub_scheduler.domain.limits import OnDuplicate
from hub_scheduler.domain.model import ErrorInfo, RunState, RunTrigger
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from hub_scheduler.domain.workflow import (
    FailurePolicy,
    StepState,
    Workflow,
    WorkflowState,
    chain,
    group,
    new_workflow_id,
    step,
)
from hub_scheduler.runtime.workflows import WorkflowEngine
from tests.contract.conftest import START, Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")


def _engine(backend: Subject) -> WorkflowEngine:
    return WorkflowEngine(
        backend.backend.workflows,
        backend.queue,
        backend.history,
        Registry(),
        backend.clock,
        backend.results,
    )


def _doc() -> Workflow:
    return Workflow.new(new_workflow_id(), chain("a", "b"), START)


async def _run_all(backend: Subject, engine: WorkflowEngine) -> list[str]:
    """Claim and succeed everything ready (returning each handler's job name as its result),
    applying events as a worker does; returns the jobs run, in order."""
    ran: list[str] = []
    while claims := await backend.queue.claim("w1", 10, LEASE):
        for claim in claims:
            await backend.results.set_result(claim.run.id, claim.run.job)
            await backend.queue.finish(claim, Succeeded())
            ran.append(claim.run.workflow_step or "")
        await engine.apply([c.run.id for c in claims])
    return ran


# --- the port ---------------------------------------------------------------------------------


async def test_documents_are_saved_only_at_the_version_read(backend: Subject) -> None:
    """A save must find the version it read: the second of two savers loses, unchanged."""
    store = backend.backend.workflows
    doc = _doc()
    await store.create(doc, backend.clock.now())
    got, version = await store.get(doc.id)
    assert (got, version) == (doc, 1)
    renamed = Workflow.new(doc.id, chain("a", "b"), doc.created_at, name="renamed")
    assert await store.save(renamed, 1)
    assert not await store.save(doc, 1)
    assert await store.get(doc.id) == (renamed, 2)
    with pytest.raises(WorkflowNotFoundError):
        await store.get(new_workflow_id())


async def test_workflows_list_newest_first_in_pages(backend: Subject) -> None:
    store = backend.backend.workflows
    ids = []
    for _ in range(5):
        doc = _doc()
        await store.create(doc, backend.clock.now())
        ids.append(doc.id)
        backend.clock.advance(timedelta(seconds=1))
    first = await store.list(limit=3)
    assert [w.id for w in first.items] == ids[::-1][:3]
    assert first.next_cursor is not None
    rest = await store.list(first.next_cursor, limit=3)
    assert [w.id for w in rest.items] == ids[::-1][3:]
    assert rest.next_cursor is None
    with pytest.raises(InvalidCursorError):
        await store.list("not-a-cursor")


async def test_events_come_from_creation_and_from_steps_ending(backend: Subject) -> None:
    """A new workflow has an event; a step's run records one when it succeeds, dies or is
    cancelled (not while it waits for a retry); a dead-letter retry of it records one for
    the new run, which keeps its workflow and step. Runs of no workflow record nothing."""
    store = backend.backend.workflows
    doc = _doc()
    await store.create(doc, backend.clock.now())
    later = backend.clock.now() + timedelta(seconds=1)
    assert list(await store.events(later)) == [doc.id]
    assert list(await store.events(backend.clock.now())) == []  # strictly before
    await store.ack([doc.id])

    def member(name: str) -> EnqueueRequest:
        return EnqueueRequest(name, workflow_id=doc.id, workflow_step=name)

    ok, dies, dropped = await backend.queue.enqueue([member("a"), member("b"), member("c")])
    await backend.queue.enqueue([EnqueueRequest("plain")])
    await backend.queue.cancel(dropped.run_id)
    claims = {c.run.workflow_step: c for c in await backend.queue.claim("w1", 10, LEASE)}
    assert claims["a"].run.workflow_id == doc.id
    await backend.queue.finish(claims["a"], Succeeded())
    await backend.queue.finish(claims["b"], Failed(BOOM, RetryAfter(timedelta(seconds=1), 2)))
    backend.clock.advance(timedelta(seconds=2))
    later = backend.clock.now() + timedelta(seconds=1)
    assert set(await store.events(later)) == {ok.run_id, dropped.run_id}
    [retry] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(retry, Failed(BOOM, GiveUp(2)))
    assert dies.run_id in await store.events(later)
    await store.ack([ok.run_id, dropped.run_id, dies.run_id])
    new_id = await backend.dead.retry(dies.run_id)
    again = await backend.history.get(new_id)
    assert (again.workflow_id, again.workflow_step, again.origin_run_id) == (
        doc.id, "b", dies.run_id,
    )  # fmt: skip
    assert list(await store.events(later)) == [new_id]


async def test_a_step_cancelled_while_running_records_its_end_on_every_path(
    backend: Subject,
) -> None:
    """A cancel request ends a running step's run cancelled whichever way its attempt ends
    (its handler stopped, its worker stopped, its lease expired), and a unique step replaced
    while waiting ends cancelled too: each end records the workflow's event."""
    store = backend.backend.workflows
    doc = _doc()

    def member(name: str, unique: str | None = None) -> EnqueueRequest:
        replace = None if unique is None else OnDuplicate.REPLACE
        return EnqueueRequest(
            name, idempotency_key=unique, on_duplicate=replace, workflow_id=doc.id,
            workflow_step=name,
        )  # fmt: skip

    stopped, interrupted, stalled = await backend.queue.enqueue(
        [member("a"), member("b"), member("c")]
    )
    claims = {c.run.workflow_step: c for c in await backend.queue.claim("w1", 3, LEASE)}
    for run in (stopped, interrupted, stalled):
        await backend.queue.cancel(run.run_id)
    await backend.queue.settle_cancelled(claims["a"])
    await backend.queue.hand_back([claims["b"]], interrupted=True)
    backend.clock.advance(LEASE + timedelta(seconds=1))
    await backend.queue.reap(3, LEASE)
    [replaced] = await backend.queue.enqueue([member("d", "unique:d")])
    await backend.queue.enqueue([member("d", "unique:d")])
    ended = [stopped.run_id, interrupted.run_id, stalled.run_id, replaced.run_id]
    assert [(await backend.history.get(i)).state for i in ended] == [RunState.CANCELLED] * 4
    later = backend.clock.now() + timedelta(seconds=1)
    assert set(ended) <= set(await store.events(later))


# --- the engine ---------------------------------------------------------------------------------


async def test_a_chain_runs_in_order_and_passes_results(backend: Subject) -> None:
    engine = _engine(backend)
    doc = Workflow.new(new_workflow_id(), chain("fetch", "transform", "load"), backend.clock.now())
    await engine.start(doc)
    assert await _run_all(backend, engine) == ["fetch", "transform", "load"]
    done, _ = await backend.backend.workflows.get(doc.id)
    assert done.state is WorkflowState.SUCCEEDED
    assert done.finished_at is not None
    upstream = await engine.upstream(doc.id, "load")
    assert {k: (v.state, v.value) for k, v in upstream.items()} == {
        "transform": (StepState.SUCCEEDED, "transform")
    }
    load = await backend.history.get(done.get("load").run_id or "")  # type: ignore[union-attr]
    assert load.trigger is RunTrigger.WORKFLOW


async def test_a_group_callback_runs_once_after_every_member(backend: Subject) -> None:
    engine = _engine(backend)
    flow = group(step("part", {"n": 1}), step("part", {"n": 2}), "other", then="merge")
    doc = Workflow.new(new_workflow_id(), flow, backend.clock.now())
    await engine.start(doc)
    first = await backend.queue.claim("w1", 10, LEASE)
    assert sorted(c.run.workflow_step or "" for c in first) == ["other", "part", "part#2"]
    assert sorted(c.run.payload.get("n", 0) for c in first) == [0, 1, 2]
    for claim in first[:2]:
        await backend.queue.finish(claim, Succeeded())
        await engine.apply([claim.run.id])
    assert await backend.queue.claim("w1", 10, LEASE) == []  # one member still runs
    await backend.queue.finish(first[2], Succeeded())
    await engine.apply([first[2].run.id])
    assert await _run_all(backend, engine) == ["merge"]


async def test_racing_appliers_start_each_step_once(backend: Subject) -> None:
    """Five engines (five workers) apply the same events at once, again and again."""
    engines = [_engine(backend) for _ in range(5)]
    doc = Workflow.new(new_workflow_id(), group("a", "b", "c", then="d"), backend.clock.now())
    await engines[0].start(doc)
    claims = await backend.queue.claim("w1", 10, LEASE)
    for claim in claims:
        await backend.queue.finish(claim, Succeeded())
    ids = [c.run.id for c in claims]
    await asyncio.gather(*(e.apply(ids) for e in engines), *(e.apply(ids[::-1]) for e in engines))
    [callback] = await backend.queue.claim("w1", 10, LEASE)
    assert callback.run.workflow_step == "d"
    page = await backend.history.list(limit=50)
    assert sorted(r.workflow_step or "" for r in page.items) == ["a", "b", "c", "d"]


async def test_a_dead_step_holds_its_dependents_until_retried(backend: Subject) -> None:
    """FAIL: the workflow is failed while a step is dead, the rest waits; retrying the dead
    run from the dead-letter queue resumes it, and the workflow succeeds."""
    engine = _engine(backend)
    doc = Workflow.new(new_workflow_id(), chain("a", "b"), backend.clock.now())
    await engine.start(doc)
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Failed(BOOM, GiveUp(1)))
    await engine.apply([claim.run.id])
    failed, _ = await backend.backend.workflows.get(doc.id)
    assert failed.state is WorkflowState.FAILED
    assert failed.get("b").state is StepState.BLOCKED  # type: ignore[union-attr]
    assert await backend.queue.claim("w1", 1, LEASE) == []
    new_id = await backend.dead.retry(claim.run.id)
    await engine.sweep()  # the retry's event is not the worker's own: a sweep finds it...
    backend.clock.advance(timedelta(seconds=3))  # ...once it is older than the grace
    await engine.sweep()
    resumed, _ = await backend.backend.workflows.get(doc.id)
    assert resumed.get("a").run_id == new_id  # type: ignore[union-attr]
    assert resumed.state is WorkflowState.RUNNING
    assert await _run_all(backend, engine) == ["a", "b"]
    assert (await backend.backend.workflows.get(doc.id))[0].state is WorkflowState.SUCCEEDED


async def test_continue_runs_dependents_and_compensate_runs_once(backend: Subject) -> None:
    engine = _engine(backend)
    cont = Workflow.new(
        new_workflow_id(), chain("a", "b"), backend.clock.now(), policy=FailurePolicy.CONTINUE
    )
    await engine.start(cont)
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Failed(BOOM, GiveUp(1)))
    await engine.apply([claim.run.id])
    assert await _run_all(backend, engine) == ["b"]
    assert (await engine.upstream(cont.id, "b"))["a"].state is StepState.DEAD
    assert (await backend.backend.workflows.get(cont.id))[0].state is WorkflowState.FAILED

    comp = Workflow.new(
        new_workflow_id(), group("x", "y", then="z"), backend.clock.now(),
        policy=FailurePolicy.COMPENSATE, compensate=step("undo", {"why": "x or y died"}),
    )  # fmt: skip
    await engine.start(comp)
    claims = await backend.queue.claim("w1", 2, LEASE)
    for claim in claims:
        await backend.queue.finish(claim, Failed(BOOM, GiveUp(1)))
        await engine.apply([claim.run.id, claim.run.id])
    [undo] = await backend.queue.claim("w1", 5, LEASE)
    assert (undo.run.workflow_step, undo.run.payload) == ("compensate", {"why": "x or y died"})


async def test_cancelling_a_workflow_cancels_its_runs_and_skips_the_rest(backend: Subject) -> None:
    engine = _engine(backend)
    doc = Workflow.new(new_workflow_id(), chain(group("a", "b"), "c"), backend.clock.now())
    await engine.start(doc)
    [running] = await backend.queue.claim("w1", 1, LEASE)
    cancelled = await engine.cancel(doc.id)
    assert cancelled.state is WorkflowState.CANCELLED
    assert cancelled.get("c").state is StepState.SKIPPED  # type: ignore[union-attr]
    assert (await backend.history.get(running.run.id)).cancel_requested_at is not None
    waiting = [s for s in cancelled.steps if s.run_id and s.run_id != running.run.id]
    assert [(await backend.history.get(s.run_id or "")).state for s in waiting] == [
        RunState.CANCELLED
    ]
    await backend.queue.settle_cancelled(running)
    backend.clock.advance(timedelta(seconds=3))
    await engine.sweep()
    final, _ = await backend.backend.workflows.get(doc.id)
    assert final.finished_at is not None
    assert {s.state for s in final.steps} == {StepState.CANCELLED, StepState.SKIPPED}
