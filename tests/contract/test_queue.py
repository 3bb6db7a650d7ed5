"""The queue on every backend: priorities, leases and fencing, retries, pause, idempotency,
delays and cancelling."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import (
    IllegalTransitionError,
    PayloadError,
    RunNotFoundError,
)
from hub_scheduler.domain.model import ErrorInfo, Priority, RunState
from hub_scheduler.domain.ports import Claim, EnqueueRequest, Failed, JobQueue, Succeeded
from hub_scheduler.domain.retry import GiveUp, RetryPolicy
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")


async def _claim_all(queue: JobQueue, worker: str = "w1", limit: int = 100) -> list[Claim]:
    return await queue.claim(worker, limit, LEASE)


async def test_strict_priority_then_fifo(backend: Subject) -> None:
    """Critical before High before Normal before Low; FIFO within one priority."""
    queue = backend.queue
    order = [
        ("low-1", Priority.LOW),
        ("normal-1", Priority.NORMAL),
        ("critical-1", Priority.CRITICAL),
        ("normal-2", Priority.NORMAL),
        ("high-1", Priority.HIGH),
        ("critical-2", Priority.CRITICAL),
    ]
    await queue.enqueue([EnqueueRequest("job", {"n": n}, p) for n, p in order])
    claims = [c for _ in range(6) for c in await queue.claim("w1", 1, LEASE)]
    assert [c.run.payload["n"] for c in claims] == [
        "critical-1",
        "critical-2",
        "high-1",
        "normal-1",
        "normal-2",
        "low-1",
    ]


async def test_claim_takes_at_most_the_limit_and_leases_them(backend: Subject) -> None:
    """A claim returns no more than asked; each claimed run is active with a lease."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest("job") for _ in range(5)])
    claims = await queue.claim("w1", 3, LEASE)
    assert len(claims) == 3
    assert {c.run.state for c in claims} == {RunState.ACTIVE}
    assert {c.lease_until for c in claims} == {backend.clock.now() + LEASE}
    snapshot = await queue.snapshot()
    assert (snapshot.active, snapshot.waiting) == (3, 2)


async def test_success_is_recorded_in_history(backend: Subject) -> None:
    """A finished run is succeeded in history, with its times, worker and duration."""
    queue, history = backend.queue, backend.history
    [enqueued] = await queue.enqueue([EnqueueRequest("job", {"a": 1})])
    [claim] = await _claim_all(queue)
    backend.clock.advance(2)
    run = await queue.finish(claim, Succeeded())
    assert run is not None
    assert (run.id, run.state, run.worker, run.duration) == (
        enqueued.run_id,
        RunState.SUCCEEDED,
        "w1",
        timedelta(seconds=2),
    )
    assert await history.get(enqueued.run_id) == run
    assert (await queue.snapshot()).active == 0


async def test_failed_attempts_follow_the_retry_policy_then_dead_letter(backend: Subject) -> None:
    """Default policy: retries wait 2 s, 4 s, 8 s; the fourth failure lands in the DLQ."""
    queue, dead = backend.queue, backend.dead
    clock, policy = backend.clock, RetryPolicy()
    await queue.enqueue([EnqueueRequest("job", {"invoice": 7})])
    waits = []
    for attempt in range(1, 5):
        [claim] = await _claim_all(queue)
        assert claim.run.attempt == attempt
        decision = policy.decide(attempt)
        assert await queue.finish(claim, Failed(BOOM, decision)) is not None
        if isinstance(decision, GiveUp):
            break
        waits.append(decision.delay)
        clock.advance(decision.delay - timedelta(milliseconds=1))
        assert await _claim_all(queue) == []  # not yet due
        clock.advance(timedelta(milliseconds=1))
    assert waits == [timedelta(seconds=s) for s in (2, 4, 8)]
    [letter] = (await dead.list()).items
    assert (letter.state, letter.attempt, letter.payload, letter.error) == (
        RunState.DEAD,
        4,
        {"invoice": 7},
        BOOM,
    )


async def test_stale_token_cannot_settle(backend: Subject) -> None:
    """After a lease expires and the run is claimed again, the old claim's ack is refused."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest("job")])
    [old] = await _claim_all(queue, "w1")
    backend.clock.advance(LEASE + timedelta(seconds=1))
    requeued, held = await queue.reap(1, LEASE)
    assert (requeued, held) == ([old.run.id], [])
    [new] = await _claim_all(queue, "w2")
    assert (new.token, new.run.stalls) == (old.token + 1, 1)
    assert await queue.finish(old, Succeeded()) is None
    done = await queue.finish(new, Succeeded())
    assert done is not None
    assert done.state is RunState.SUCCEEDED


async def test_renewed_lease_survives_the_reaper(backend: Subject) -> None:
    """A worker that renews in time keeps its run; one that stops loses it to the reaper."""
    queue = backend.queue
    clock = backend.clock
    await queue.enqueue([EnqueueRequest("job"), EnqueueRequest("job")])
    kept, dropped = await _claim_all(queue)
    clock.advance(20)
    assert await queue.renew("w1", [kept], LEASE) == []
    clock.advance(15)
    requeued, _ = await queue.reap(1, LEASE)
    assert requeued == [dropped.run.id]
    assert await queue.renew("w1", [kept, dropped], LEASE) == [dropped.run.id]


async def test_second_stall_is_held_for_failure(backend: Subject) -> None:
    """A run that stalls twice is not requeued again: the reaper holds it to fail the attempt."""
    queue = backend.queue
    clock = backend.clock
    await queue.enqueue([EnqueueRequest("job")])
    await _claim_all(queue)
    clock.advance(LEASE + timedelta(seconds=1))
    await queue.reap(1, LEASE)
    await _claim_all(queue)
    clock.advance(LEASE + timedelta(seconds=1))
    requeued, held = await queue.reap(1, LEASE)
    assert requeued == []
    [claim] = held
    assert claim.run.stalls == 2
    run = await queue.finish(claim, Failed(ErrorInfo("StalledError", "x"), GiveUp(1)))
    assert run is not None
    assert run.state is RunState.DEAD


async def test_hand_back_returns_runs_to_the_front(backend: Subject) -> None:
    """Unstarted claims handed back are claimed again first, with no stall counted."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(4)])
    first_two = await queue.claim("w1", 2, LEASE)
    await queue.hand_back(first_two)
    again = await queue.claim("w2", 4, LEASE)
    assert [c.run.payload["i"] for c in again] == [0, 1, 2, 3]
    assert {c.run.stalls for c in again} == {0}


async def test_pausing_the_queue_stops_claims_until_resumed(backend: Subject) -> None:
    """While the queue is paused nothing is claimed; resume restores the same order."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(3)])
    await queue.pause()
    assert await _claim_all(queue) == []
    assert (await queue.snapshot()).paused
    await queue.resume()
    assert [c.run.payload["i"] for c in await _claim_all(queue)] == [0, 1, 2]


async def test_pausing_one_job_parks_it_and_lets_others_flow(backend: Subject) -> None:
    """A paused job's runs wait in order while other jobs run; resume puts them back first."""
    queue = backend.queue
    await queue.pause("report")
    await queue.enqueue(
        [
            EnqueueRequest("report", {"i": 1}),
            EnqueueRequest("email", {"i": 2}),
            EnqueueRequest("report", {"i": 3}),
            EnqueueRequest("email", {"i": 4}),
        ]
    )
    assert [c.run.payload["i"] for c in await _claim_all(queue)] == [2, 4]
    snapshot = await queue.snapshot()
    assert (snapshot.paused_jobs, snapshot.parked) == (frozenset({"report"}), 2)
    await queue.enqueue([EnqueueRequest("email", {"i": 5})])
    await queue.resume("report")
    assert [c.run.payload["i"] for c in await _claim_all(queue)] == [1, 3, 5]


async def test_idempotency_key_enqueues_once_within_its_window(backend: Subject) -> None:
    """The same key inside its window returns the first run's id; after it, a new run."""
    queue = backend.queue
    window = timedelta(minutes=5)
    request = EnqueueRequest("job", idempotency_key="invoice-7", idempotency_window=window)
    first, second = await queue.enqueue([request, request])
    assert (second.run_id, second.created) == (first.run_id, False)
    assert len(await _claim_all(queue)) == 1
    backend.clock.advance(window)
    [third] = await queue.enqueue([request])
    assert third.created
    assert third.run_id != first.run_id


async def test_delayed_run_waits_for_its_time(backend: Subject) -> None:
    """A run enqueued for later is delayed, then claimable once the clock reaches it."""
    queue = backend.queue
    clock = backend.clock
    await queue.enqueue([EnqueueRequest("job", run_at=clock.now() + timedelta(seconds=10))])
    assert await _claim_all(queue) == []
    assert (await queue.snapshot()).delayed == 1
    clock.advance(10)
    [claim] = await _claim_all(queue)
    assert claim.run.state is RunState.ACTIVE


async def test_payload_must_be_a_json_object_within_the_limit(backend: Subject) -> None:
    """Unencodable or oversized payloads are refused and nothing is stored."""
    queue = backend.queue
    with pytest.raises(PayloadError, match="not JSON-encodable"):
        await queue.enqueue([EnqueueRequest("job", {"when": object()})])
    with pytest.raises(PayloadError, match="the limit is"):
        await queue.enqueue([EnqueueRequest("job", {"blob": "x" * (backend.payload_limit + 1)})])
    assert (await queue.snapshot()).waiting == 0


async def test_cancel_waiting_runs(backend: Subject) -> None:
    """Queued runs are cancelled at once and never claimed; finished ones cannot be."""
    queue = backend.queue
    done, waiting = await queue.enqueue([EnqueueRequest("job"), EnqueueRequest("job")])
    [claim] = await queue.claim("w1", 1, LEASE)
    await queue.finish(claim, Succeeded())
    with pytest.raises(IllegalTransitionError):
        await queue.cancel(done.run_id)
    cancelled = await queue.cancel(waiting.run_id)
    assert cancelled.state is RunState.CANCELLED
    assert await _claim_all(queue) == []
    with pytest.raises(RunNotFoundError):
        await queue.cancel("nope")


async def test_runs_of_a_dead_worker_return_in_their_original_order(backend: Subject) -> None:
    """Runs claimed together and recovered together are claimed again oldest first."""
    queue, clock = backend.queue, backend.clock
    for i in range(4):
        await queue.enqueue([EnqueueRequest("job", {"i": i})])
        clock.advance(0.001)
    await queue.claim("dead-worker", 4, LEASE)  # one batch: one shared lease deadline
    clock.advance(LEASE + timedelta(seconds=1))
    requeued, _ = await queue.reap(1, LEASE)
    assert len(requeued) == 4
    assert [c.run.payload["i"] for c in await _claim_all(queue)] == [0, 1, 2, 3]


async def test_exchange_settles_then_claims_and_names_the_next_due(backend: Subject) -> None:
    """One exchange records a finished attempt, claims what is wanted and says when the next
    delayed run is due."""
    queue, clock = backend.queue, backend.clock
    later = clock.now() + timedelta(minutes=5)
    await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(3)])
    await queue.enqueue([EnqueueRequest("job", {"i": 9}, run_at=later)])
    [first] = await queue.claim("w1", 1, LEASE)
    result = await queue.exchange("w1", [(first, Succeeded())], 5, LEASE)
    assert (result.applied, [c.run.payload["i"] for c in result.claims], result.next_due) == (
        (True,),
        [1, 2],
        later,
    )
    assert (await backend.history.get(first.run.id)).state is RunState.SUCCEEDED


@pytest.mark.order_across_jobs(
    "claims the CRITICAL run of 'doomed' before the LOW runs of 'job', another shard's"
)
async def test_snapshot_counts_what_waits_where(backend: Subject) -> None:
    """The snapshot counts ready runs per priority, delayed, active and dead runs, and the
    age of the oldest waiting run."""
    queue, clock = backend.queue, backend.clock
    await queue.enqueue([EnqueueRequest("job", priority=Priority.HIGH)])
    clock.advance(5)
    await queue.enqueue(
        [
            EnqueueRequest("job", priority=Priority.LOW),
            EnqueueRequest("job", priority=Priority.LOW),
            EnqueueRequest("job", run_at=clock.now() + timedelta(hours=1)),
            EnqueueRequest("doomed", priority=Priority.CRITICAL),
        ]
    )
    [doomed] = await queue.claim("w1", 1, LEASE)
    await queue.finish(doomed, Failed(BOOM, GiveUp(1)))
    await queue.claim("w1", 1, LEASE)  # the High one
    snapshot = await queue.snapshot()
    assert dict(snapshot.depth) == {
        Priority.CRITICAL: 0,
        Priority.HIGH: 0,
        Priority.NORMAL: 0,
        Priority.LOW: 2,
    }
    assert (snapshot.delayed, snapshot.active, snapshot.dead, snapshot.waiting) == (1, 1, 1, 2)
    assert (snapshot.paused, snapshot.paused_jobs, snapshot.oldest_waiting) == (
        False,
        frozenset(),
        timedelta(0),
    )
    clock.advance(3)
    assert (await queue.snapshot()).oldest_waiting == timedelta(seconds=3)


async def test_a_cancelled_delayed_run_never_comes_due(backend: Subject) -> None:
    """A delayed run cancelled before its time is cancelled in history and never claimed."""
    queue, clock = backend.queue, backend.clock
    [delayed] = await queue.enqueue([EnqueueRequest("job", run_at=clock.now() + timedelta(days=1))])
    cancelled = await queue.cancel(delayed.run_id)
    clock.advance(timedelta(days=2))
    assert (cancelled.state, await _claim_all(queue)) == (RunState.CANCELLED, [])
    assert (await backend.history.get(delayed.run_id)).state is RunState.CANCELLED
    assert (await queue.snapshot()).delayed == 0
