"""Every backend keeps a run's attempts: start, end, worker, outcome, error and retry delay,
for successes, failures, stalls and interrupted runs, bounded to the latest few."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler.domain.model import (
    MAX_ATTEMPTS_KEPT,
    Attempt,
    AttemptOutcome,
    ErrorInfo,
    RunState,
)
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from tests.contract.conftest import START, Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom", 'Traceback (most recent call last):\n  File "x.py"\n')
STALLED = ErrorInfo("StalledError", "its worker stopped renewing the lease")


def _at(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


async def test_a_new_run_has_no_attempts(backend: Subject) -> None:
    """Before it first runs, a run's attempt log is empty."""
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("job")])
    run = await backend.history.get(enqueued.run_id)
    assert (run.attempts, run.attempts_dropped) == ((), 0)


async def test_a_retried_failure_and_the_success_after_it_are_both_kept(
    backend: Subject,
) -> None:
    """A failure is kept with its worker, times, error and retry delay; the retry that
    succeeds is added after it."""
    queue, clock = backend.queue, backend.clock
    [enqueued] = await queue.enqueue([EnqueueRequest("job")])
    [claim] = await queue.claim("w1", 1, LEASE)
    clock.advance(2)
    await queue.finish(claim, Failed(BOOM, RetryAfter(_at(5), 2)))
    clock.advance(5)
    [claim] = await queue.claim("w2", 1, LEASE)
    clock.advance(1)
    run = await queue.finish(claim, Succeeded())
    assert run is not None
    assert run.attempts == (
        Attempt(1, START, START + _at(2), "w1", AttemptOutcome.FAILED, BOOM, _at(5)),
        Attempt(2, START + _at(7), START + _at(8), "w2", AttemptOutcome.SUCCEEDED),
    )
    assert run.attempts[0].retry_at == START + _at(7)
    assert await backend.history.get(enqueued.run_id) == run


async def test_the_last_failure_is_kept_on_the_dead_letter(backend: Subject) -> None:
    """An attempt with no retry left is logged as given up, no delay, on the dead letter."""
    queue = backend.queue
    [enqueued] = await queue.enqueue([EnqueueRequest("job")])
    [claim] = await queue.claim("w1", 1, LEASE)
    backend.clock.advance(3)
    await queue.finish(claim, Failed(BOOM, GiveUp(1)))
    letter = await backend.dead.get(enqueued.run_id)
    assert letter.attempts == (
        Attempt(1, START, START + _at(3), "w1", AttemptOutcome.GAVE_UP, BOOM),
    )


async def test_stalls_are_kept_with_the_worker_that_lost_them(backend: Subject) -> None:
    """A requeued stall is logged with the worker that lost its lease; a second stall,
    held and failed by the reaper, gets the settled outcome and keeps that worker."""
    queue, clock = backend.queue, backend.clock
    [enqueued] = await queue.enqueue([EnqueueRequest("job")])
    await queue.claim("w1", 1, LEASE)
    clock.advance(LEASE + _at(1))
    await queue.reap(1, LEASE)
    first_stall = START + LEASE + _at(1)
    run = await backend.history.get(enqueued.run_id)
    assert (run.state, run.attempts) == (
        RunState.QUEUED,
        (Attempt(1, START, first_stall, "w1", AttemptOutcome.STALLED, STALLED),),
    )
    await queue.claim("w2", 1, LEASE)
    clock.advance(LEASE + _at(1))
    _, [held] = await queue.reap(1, LEASE)
    failure = ErrorInfo("StalledError", "its worker stopped renewing the lease 2 times")
    run_after = await queue.finish(held, Failed(failure, RetryAfter(_at(4), 2)))
    assert run_after is not None
    assert run_after.attempts[1] == Attempt(
        1, first_stall, clock.now(), "w2", AttemptOutcome.FAILED, failure, _at(4)
    )
    assert len(run_after.attempts) == 2


async def test_an_interrupted_run_goes_back_at_once_with_a_stall(backend: Subject) -> None:
    """A run handed back as interrupted counts a stall, logs the attempt and is the first
    claimed again; unstarted runs handed back log nothing."""
    queue, clock = backend.queue, backend.clock
    await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(3)])
    running, unstarted = await queue.claim("w1", 2, LEASE)
    clock.advance(4)
    await queue.hand_back([running], interrupted=True)
    await queue.hand_back([unstarted])
    again = await queue.claim("w2", 3, LEASE)
    assert [(c.run.payload["i"], c.run.stalls) for c in again] == [(1, 0), (0, 1), (2, 0)]
    assert again[1].run.attempts == (
        Attempt(1, START, START + _at(4), "w1", AttemptOutcome.INTERRUPTED),
    )
    assert again[0].run.attempts == ()


async def test_the_log_keeps_the_latest_attempts_and_counts_the_rest(backend: Subject) -> None:
    """Beyond `MAX_ATTEMPTS_KEPT` attempts the oldest are dropped and counted."""
    queue = backend.queue
    [enqueued] = await queue.enqueue([EnqueueRequest("job")])
    total = MAX_ATTEMPTS_KEPT + 2
    for attempt in range(1, total + 1):
        [claim] = await queue.claim("w1", 1, LEASE)
        await queue.finish(claim, Failed(BOOM, RetryAfter(timedelta(0), attempt + 1)))
    run = await backend.history.get(enqueued.run_id)
    assert [a.number for a in run.attempts] == list(range(3, total + 1))
    assert run.attempts_dropped == 2
