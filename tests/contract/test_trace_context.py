"""Trace contexts on every backend: stored with a run at enqueue, handed back with its claims
and its history, kept by retries and dead-letter retries, absent when none was given."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler.domain.model import ErrorInfo, RunTrigger
from hub_scheduler.domain.ports import AttemptTraces, EnqueueRequest, Failed
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CONTEXT = {"traceparent": TRACEPARENT, "tracestate": "vendor=opaque,other=1"}


async def test_a_trace_context_round_trips_through_enqueue_and_claim(backend: Subject) -> None:
    """The claim and the history of a traced run carry the context it was enqueued with."""
    [answer] = await backend.queue.enqueue([EnqueueRequest("job", trace_context=CONTEXT)])
    [claim] = await backend.queue.claim("w1", 5, LEASE)
    assert (claim.run.id, claim.run.trace_context) == (answer.run_id, CONTEXT)
    assert (await backend.history.get(answer.run_id)).trace_context == CONTEXT


async def test_runs_enqueued_without_a_trace_context_have_none(backend: Subject) -> None:
    """A run enqueued untraced (or by a schedule) reads back with no trace context, next to
    traced ones in the same batch."""
    only_parent = {"traceparent": TRACEPARENT}
    requests = [EnqueueRequest("job"), EnqueueRequest("job", trace_context=only_parent)]
    answers = await backend.queue.enqueue(requests)
    claims = {c.run.id: c.run.trace_context for c in await backend.queue.claim("w1", 5, LEASE)}
    assert claims == {answers[0].run_id: None, answers[1].run_id: only_parent}


async def test_a_retried_run_keeps_its_trace_context(backend: Subject) -> None:
    """The attempt after a failure is claimed with the context of the first."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest("job", trace_context=CONTEXT)])
    [first] = await queue.claim("w1", 5, LEASE)
    await queue.finish(first, Failed(BOOM, RetryAfter(timedelta(seconds=1), 2)))
    backend.clock.advance(timedelta(seconds=2))
    [second] = await queue.claim("w1", 5, LEASE)
    assert (second.run.attempt, second.run.trace_context) == (2, CONTEXT)


async def test_the_first_attempts_trace_is_kept_for_the_retries(backend: Subject) -> None:
    """A first attempt's trace context kept under its claim comes back with the retry's
    claim; one kept under a stale claim (the run was claimed again since) is ignored."""
    queue = backend.queue
    assert isinstance(queue, AttemptTraces)
    first_attempt = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"}
    await queue.enqueue([EnqueueRequest("job", trace_context=CONTEXT)])
    [first] = await queue.claim("w1", 5, LEASE)
    assert first.run.first_attempt_trace is None
    await queue.keep_first_attempt_trace(first, first_attempt)
    await queue.finish(first, Failed(BOOM, RetryAfter(timedelta(seconds=1), 2)))
    backend.clock.advance(timedelta(seconds=2))
    [second] = await queue.claim("w1", 5, LEASE)
    assert (second.run.trace_context, second.run.first_attempt_trace) == (CONTEXT, first_attempt)
    await queue.keep_first_attempt_trace(first, {"traceparent": TRACEPARENT})  # stale token
    run = await backend.history.get(second.run.id)
    assert run.first_attempt_trace == first_attempt


async def test_a_dead_letter_retry_keeps_the_dead_runs_trace_context(backend: Subject) -> None:
    """A run retried from the dead-letter queue carries its origin's trace context, so its
    trace can link back to the first one."""
    queue = backend.queue
    [answer] = await queue.enqueue([EnqueueRequest("job", trace_context=CONTEXT)])
    [claim] = await queue.claim("w1", 5, LEASE)
    await queue.finish(claim, Failed(BOOM, GiveUp(1)))
    new_id = await backend.dead.retry(answer.run_id)
    [again] = await queue.claim("w1", 5, LEASE)
    assert (again.run.id, again.run.trigger, again.run.origin_run_id) == (
        new_id,
        RunTrigger.DEAD_LETTER_RETRY,
        answer.run_id,
    )
    assert again.run.trace_context == CONTEXT
