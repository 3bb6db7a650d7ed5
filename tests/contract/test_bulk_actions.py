"""Bulk actions through the admin service on every backend: cancel, retry and delete every
run a selection matches, each audited as one entry with the selection and the counts."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler.domain.admin import Actor, AdminService, BulkAction, RunSelection
from hub_scheduler.domain.model import ErrorInfo, JobDefinition, RunState, RunTrigger
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.registry import JobContext, Registry
from hub_scheduler.domain.retry import GiveUp
from tests.contract.conftest import Subject

ALICE = Actor("alice", ("SystemAdmin",), channel="api")
LEASE = timedelta(seconds=30)


async def _noop(ctx: JobContext) -> None:
    del ctx


def _admin(backend: Subject) -> AdminService:
    registry = Registry()
    for name in ("report", "syncXero"):
        registry.add(JobDefinition(name), _noop)
    return AdminService(backend.backend, registry, backend.clock)


async def _enqueue(backend: Subject, job: str, count: int, **fields: object) -> list[str]:
    requests = [EnqueueRequest(job, {"n": n}, **fields) for n in range(count)]  # type: ignore[arg-type]
    return [answer.run_id for answer in await backend.queue.enqueue(requests)]


async def _dead(backend: Subject, job: str, count: int) -> list[str]:
    ids = await _enqueue(backend, job, count)
    for claim in await backend.queue.claim("w1", count, LEASE):
        await backend.queue.finish(claim, Failed(ErrorInfo("ValueError", "boom"), GiveUp(1)))
    return ids


async def test_bulk_cancel_by_job_cancels_waiting_and_asks_running_ones(
    backend: Subject,
) -> None:
    """Everything of one job that has not finished is cancelled (a running run asked to
    stop); finished runs and other jobs are left alone; one audit entry says how many."""
    admin = _admin(backend)
    running, *waiting = await _enqueue(backend, "report", 4)
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    assert claim.run.id == running
    others = await _enqueue(backend, "syncXero", 2)
    result = await admin.bulk(ALICE, BulkAction.CANCEL, RunSelection(job="report"))
    assert (result.done, result.skipped, result.more) == (4, 0, False)
    assert [(await backend.history.get(i)).state for i in waiting] == [RunState.CANCELLED] * 3
    active = await backend.history.get(running)
    assert (active.state, active.cancel_requested_at is not None) == (RunState.ACTIVE, True)
    assert {(await backend.history.get(i)).state for i in others} == {RunState.QUEUED}
    [entry] = list((await backend.audit.list()).items)
    assert (entry.action, entry.target, entry.outcome) == ("runs.cancel", "runs", "ok")
    assert (entry.before, entry.after) == (
        {"job": "report"},
        {"done": 4, "skipped": 0, "more": False},
    )


async def test_bulk_retry_and_delete_act_on_dead_letters(backend: Subject) -> None:
    """Retry starts a new run linked to each selected dead letter; delete forgets them;
    dead letters of other jobs stay."""
    admin = _admin(backend)
    retried = await _dead(backend, "report", 2)
    kept = await _dead(backend, "syncXero", 1)
    result = await admin.bulk(ALICE, BulkAction.RETRY, RunSelection(job="report"))
    assert (result.done, len(result.new_run_ids)) == (2, 2)
    origins = {(await backend.history.get(i)).origin_run_id for i in result.new_run_ids}
    assert origins == set(retried)
    again = await admin.bulk(ALICE, BulkAction.RETRY, RunSelection(job="report"))
    assert again.done == 0  # they left the dead letters
    assert [r.id for r in (await backend.dead.list()).items] == kept
    deleted = await admin.bulk(ALICE, BulkAction.DELETE, RunSelection(job="syncXero"))
    assert deleted.done == 1
    assert [r.id for r in (await backend.dead.list()).items] == []


async def test_a_selection_of_ids_a_trigger_and_a_time_range(backend: Subject) -> None:
    """Explicit ids act only on those that match the rest of the selection; a trigger and
    an enqueue-time range narrow a filter."""
    admin = _admin(backend)
    early = await _enqueue(backend, "report", 2)
    backend.clock.advance(timedelta(minutes=10))
    scheduled = await _enqueue(backend, "report", 2, trigger=RunTrigger.SCHEDULE)
    window = RunSelection(enqueued_before=backend.clock.now() - timedelta(minutes=5))
    assert await admin.bulk_preview(BulkAction.CANCEL, window) == (2, False)
    by_trigger = RunSelection(trigger=RunTrigger.SCHEDULE)
    assert (await admin.bulk(ALICE, BulkAction.CANCEL, by_trigger)).done == 2
    chosen = RunSelection(run_ids=(early[0], scheduled[0], "0123456789abcdef"))
    result = await admin.bulk(ALICE, BulkAction.CANCEL, chosen)
    assert (result.done, result.skipped) == (1, 0)  # the others: cancelled already, unknown
    assert (await backend.history.get(early[1])).state is RunState.QUEUED


async def test_a_limit_acts_on_that_many_and_says_more_match(backend: Subject) -> None:
    """With a limit below the match count, that many are acted on and `more` is set."""
    admin = _admin(backend)
    await _enqueue(backend, "report", 5)
    first = await admin.bulk(ALICE, BulkAction.CANCEL, RunSelection(job="report"), limit=3)
    assert (first.done, first.more) == (3, True)
    rest = await admin.bulk(ALICE, BulkAction.CANCEL, RunSelection(job="report"), limit=3)
    assert (rest.done, rest.more) == (2, False)


async def test_finished_runs_are_never_selected_for_a_cancel(backend: Subject) -> None:
    """A finished run named by id and by state is not one a cancel applies to."""
    admin = _admin(backend)
    [run_id] = await _enqueue(backend, "report", 1)
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Succeeded())
    states = frozenset({RunState.SUCCEEDED, RunState.ACTIVE})
    result = await admin.bulk(ALICE, BulkAction.CANCEL, RunSelection((run_id,), states=states))
    assert (result.done, result.skipped) == (0, 0)
    assert (await backend.history.get(run_id)).state is RunState.SUCCEEDED
