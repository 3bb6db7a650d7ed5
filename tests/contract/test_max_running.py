"""Global concurrency per job (`max_running`) on every backend: never more active runs of a
limited job than its limit, across workers; the others wait in order and start as active
ones end, however they end."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler.domain.limits import JobLimits
from hub_scheduler.domain.model import ErrorInfo, RunState
from hub_scheduler.domain.ports import Claim, EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import RetryAfter
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)


async def _enqueue(backend: Subject, job: str, count: int) -> list[str]:
    answers = await backend.queue.enqueue([EnqueueRequest(job, {"n": n}) for n in range(count)])
    return [answer.run_id for answer in answers]


async def _claim(backend: Subject, worker: str = "w1", want: int = 10) -> list[Claim]:
    return await backend.queue.claim(worker, want, LEASE)


async def test_a_limited_job_runs_at_most_its_limit_and_others_flow(backend: Subject) -> None:
    """With max_running=1, one claim of many takes one run of the job and every run of
    others; the held ones still count as waiting."""
    await backend.queue.set_limits({"report": JobLimits(1), "other": JobLimits()})
    reports = await _enqueue(backend, "report", 3)
    others = await _enqueue(backend, "other", 2)
    claims = await _claim(backend)
    assert sorted(c.run.id for c in claims) == sorted([reports[0], *others])
    snapshot = await backend.queue.snapshot()
    assert (snapshot.active, snapshot.waiting) == (3, 2)


async def test_the_limit_holds_across_workers(backend: Subject) -> None:
    """A second worker gets none of a job at its limit; the first one's runs count."""
    await backend.queue.set_limits({"report": JobLimits(2)})
    await _enqueue(backend, "report", 5)
    assert len(await _claim(backend, "w1", 1)) == 1
    assert len(await _claim(backend, "w2", 10)) == 1
    assert await _claim(backend, "w3", 10) == []


async def test_held_runs_start_in_order_as_active_ones_end(backend: Subject) -> None:
    """Each settle frees one slot, and the oldest held run takes it: a success, a failure
    that waits for its retry, a cancel."""
    await backend.queue.set_limits({"report": JobLimits(1)})
    ids = await _enqueue(backend, "report", 4)
    [first] = await _claim(backend)
    await backend.queue.finish(first, Succeeded())
    [second] = await _claim(backend)
    failed = Failed(ErrorInfo("ValueError", "boom"), RetryAfter(timedelta(minutes=5), 2))
    await backend.queue.finish(second, failed)
    [third] = await _claim(backend)
    await backend.queue.cancel(third.run.id)
    await backend.queue.settle_cancelled(third)
    [fourth] = await _claim(backend)
    assert [c.run.id for c in (first, second, third, fourth)] == ids
    assert await _claim(backend) == []
    await backend.queue.finish(fourth, Succeeded())
    backend.clock.advance(timedelta(minutes=5))
    [retry] = await _claim(backend)
    assert (retry.run.id, retry.run.attempt) == (ids[1], 2)


async def test_a_dead_workers_run_frees_its_slot_when_its_lease_runs_out(backend: Subject) -> None:
    """The limit is tied to the lease: a stalled run is recovered first in line, and it, not
    a held run, takes the slot back."""
    await backend.queue.set_limits({"report": JobLimits(1)})
    ids = await _enqueue(backend, "report", 2)
    [lost] = await _claim(backend, "dead-worker")
    backend.clock.advance(LEASE + timedelta(seconds=1))
    requeued, _ = await backend.queue.reap(1, LEASE)
    assert requeued == [lost.run.id]
    claims = await _claim(backend, "w2")
    assert [c.run.id for c in claims] == [ids[0]]
    await backend.queue.finish(claims[0], Succeeded())
    assert [c.run.id for c in await _claim(backend, "w2")] == [ids[1]]


async def test_a_cancelled_held_run_never_starts(backend: Subject) -> None:
    """A run cancelled while it waits for a slot is cancelled; the next one takes the slot."""
    await backend.queue.set_limits({"report": JobLimits(1)})
    ids = await _enqueue(backend, "report", 3)
    [first] = await _claim(backend)
    cancelled = await backend.queue.cancel(ids[1])
    assert cancelled.state is RunState.CANCELLED
    await backend.queue.finish(first, Succeeded())
    assert [c.run.id for c in await _claim(backend)] == [ids[2]]


async def test_raising_or_removing_a_limit_releases_held_runs(backend: Subject) -> None:
    """A limit raised to 2 lets one more start; removed, every held run can start."""
    await backend.queue.set_limits({"report": JobLimits(1)})
    ids = await _enqueue(backend, "report", 5)
    assert len(await _claim(backend)) == 1
    await backend.queue.set_limits({"report": JobLimits(2)})
    [second] = await _claim(backend)
    assert second.run.id == ids[1]
    await backend.queue.set_limits({"report": JobLimits()})
    assert [c.run.id for c in await _claim(backend)] == ids[2:]


async def test_a_handed_back_run_frees_its_slot(backend: Subject) -> None:
    """A run a stopping worker hands back is first in line again, and can start again."""
    await backend.queue.set_limits({"report": JobLimits(1)})
    ids = await _enqueue(backend, "report", 2)
    [claim] = await _claim(backend)
    await backend.queue.hand_back([claim], interrupted=True)
    assert [c.run.id for c in await _claim(backend, "w2")] == [ids[0]]
