"""Cancelling a running run, on every backend: the request, the worker's view of it, and the
one final state the run ends in whatever ends its attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import IllegalTransitionError, RunNotFoundError
from hub_scheduler.domain.model import AttemptOutcome, ErrorInfo, RunState
from hub_scheduler.domain.ports import Claim, EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")


async def _running(backend: Subject, count: int = 1) -> list[Claim]:
    await backend.queue.enqueue([EnqueueRequest("job", {"n": n}) for n in range(count)])
    claims = await backend.queue.claim("w1", count, LEASE)
    assert len(claims) == count
    return claims


async def _never_claimed_again(backend: Subject) -> None:
    backend.clock.advance(timedelta(hours=1))
    assert await backend.queue.claim("w2", 10, LEASE) == []


async def test_cancelling_a_running_run_requests_it(backend: Subject) -> None:
    """The run stays active with the time of the first request; its worker is told of it
    and of no other run; a second request keeps the first time."""
    first, other = await _running(backend, 2)
    asked_at = backend.clock.now()
    run = await backend.queue.cancel(first.run.id)
    assert (run.state, run.cancel_requested_at) == (RunState.ACTIVE, asked_at)
    backend.clock.advance(5)
    again = await backend.queue.cancel(first.run.id)
    assert again.cancel_requested_at == asked_at
    assert await backend.queue.cancel_requests([first, other]) == [first.run.id]
    assert (await backend.history.get(first.run.id)).cancel_requested_at == asked_at
    assert (await backend.history.get(other.run.id)).cancel_requested_at is None


async def test_a_stopped_handler_ends_the_run_cancelled(backend: Subject) -> None:
    """Settled as cancelled, the run is final, logs a cancelled attempt, never runs again, and
    its worker is no longer told of the request."""
    [claim] = await _running(backend)
    await backend.queue.cancel(claim.run.id)
    backend.clock.advance(2)
    run = await backend.queue.settle_cancelled(claim)
    assert run is not None
    assert (run.state, run.finished_at) == (RunState.CANCELLED, backend.clock.now())
    assert [(a.number, a.outcome, a.worker) for a in run.attempts] == [
        (1, AttemptOutcome.CANCELLED, "w1")
    ]
    assert await backend.queue.cancel_requests([claim]) == []
    assert (await backend.queue.snapshot()).active == 0
    await _never_claimed_again(backend)


async def test_a_stale_claim_cannot_settle_a_cancel(backend: Subject) -> None:
    """A worker whose lease was lost (the run claimed again) settles nothing."""
    [claim] = await _running(backend)
    backend.clock.advance(LEASE + timedelta(seconds=1))
    requeued, _ = await backend.queue.reap(1, LEASE)
    assert requeued == [claim.run.id]
    [again] = await backend.queue.claim("w2", 1, LEASE)
    assert await backend.queue.settle_cancelled(claim) is None
    assert (await backend.history.get(again.run.id)).state is RunState.ACTIVE


async def test_a_failure_after_the_request_is_never_retried(backend: Subject) -> None:
    """A failed attempt of a run cancelled meanwhile ends it cancelled, with its error, where
    the retry policy would have retried it."""
    [claim] = await _running(backend)
    await backend.queue.cancel(claim.run.id)
    run = await backend.queue.finish(claim, Failed(BOOM, RetryAfter(timedelta(seconds=2), 2)))
    assert run is not None
    assert run.state is RunState.CANCELLED
    assert run.error is not None
    assert run.error.message == "boom"
    assert [(a.outcome, a.retry_delay) for a in run.attempts] == [(AttemptOutcome.CANCELLED, None)]
    await _never_claimed_again(backend)


async def test_giving_up_after_the_request_is_no_dead_letter(backend: Subject) -> None:
    """A last failed attempt of a run cancelled meanwhile ends it cancelled, not dead."""
    [claim] = await _running(backend)
    await backend.queue.cancel(claim.run.id)
    run = await backend.queue.finish(claim, Failed(BOOM, GiveUp(1)))
    assert run is not None
    assert run.state is RunState.CANCELLED
    assert list((await backend.dead.list()).items) == []
    assert (await backend.queue.snapshot()).dead == 0


async def test_a_success_recorded_first_wins(backend: Subject) -> None:
    """A handler that finished before it saw the request succeeded: that is the final state,
    and a cancel afterwards is refused."""
    [claim] = await _running(backend)
    await backend.queue.cancel(claim.run.id)
    run = await backend.queue.finish(claim, Succeeded())
    assert run is not None
    assert run.state is RunState.SUCCEEDED
    assert await backend.queue.settle_cancelled(claim) is None
    with pytest.raises(IllegalTransitionError):
        await backend.queue.cancel(claim.run.id)
    assert (await backend.history.get(claim.run.id)).state is RunState.SUCCEEDED


async def test_a_dead_workers_cancelled_run_does_not_come_back(backend: Subject) -> None:
    """A run cancelled while its worker died ends cancelled when its lease runs out, instead
    of going back to the queue."""
    [claim] = await _running(backend)
    await backend.queue.cancel(claim.run.id)
    backend.clock.advance(LEASE + timedelta(seconds=1))
    requeued, held = await backend.queue.reap(5, LEASE)
    assert (requeued, held) == ([], [])
    run = await backend.history.get(claim.run.id)
    assert run.state is RunState.CANCELLED
    assert [a.outcome for a in run.attempts] == [AttemptOutcome.STALLED]
    await _never_claimed_again(backend)


async def test_a_stopping_worker_hands_back_a_cancelled_run_as_cancelled(
    backend: Subject,
) -> None:
    """A run cut off by its worker's stop while cancelled meanwhile is not queued again."""
    interrupted, unstarted = await _running(backend, 2)
    for claim in (interrupted, unstarted):
        await backend.queue.cancel(claim.run.id)
    await backend.queue.hand_back([interrupted], interrupted=True)
    await backend.queue.hand_back([unstarted])
    ended = [await backend.history.get(c.run.id) for c in (interrupted, unstarted)]
    assert [r.state for r in ended] == [RunState.CANCELLED, RunState.CANCELLED]
    assert [[a.outcome for a in r.attempts] for r in ended] == [[AttemptOutcome.CANCELLED], []]
    await _never_claimed_again(backend)


async def test_cancelling_a_finished_or_unknown_run_is_refused(backend: Subject) -> None:
    """A finished run cannot be cancelled; an unknown one is not found."""
    [claim] = await _running(backend)
    await backend.queue.finish(claim, Failed(BOOM, GiveUp(1)))
    with pytest.raises(IllegalTransitionError, match="'dead' to 'cancelled'"):
        await backend.queue.cancel(claim.run.id)
    with pytest.raises(RunNotFoundError):
        await backend.queue.cancel("0123456789abcdef")
