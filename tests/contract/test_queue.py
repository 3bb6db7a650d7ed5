"""The queue's contract: priorities, leases, retries, dead letters, pause, idempotency, history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import (
    DeadLetterNotFoundError,
    IllegalTransitionError,
    InvalidCursorError,
    PayloadError,
    RunNotFoundError,
)
from hub_scheduler.domain.model import ErrorInfo, Priority, RunState, RunTrigger
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


async def test_dead_letter_retry_starts_a_linked_series(backend: Subject) -> None:
    """Retrying a dead letter enqueues a fresh run (attempt 1) that points to the dead one."""
    queue, dead, history = backend.queue, backend.dead, backend.history
    [first] = await queue.enqueue([EnqueueRequest("job", {"x": 1}, Priority.HIGH)])
    [claim] = await _claim_all(queue)
    await queue.finish(claim, Failed(BOOM, GiveUp(1)))
    new_id = await dead.retry(first.run_id)
    new = await history.get(new_id)
    assert (new.state, new.attempt, new.origin_run_id, new.trigger, new.priority, new.payload) == (
        RunState.QUEUED,
        1,
        first.run_id,
        RunTrigger.DEAD_LETTER_RETRY,
        Priority.HIGH,
        {"x": 1},
    )
    assert (await dead.list()).items == ()
    with pytest.raises(DeadLetterNotFoundError):
        await dead.retry(first.run_id)


async def test_dead_letters_retry_all_delete_and_purge(backend: Subject) -> None:
    """retry_all requeues every dead letter; delete forgets one; purge forgets the rest."""
    queue, dead = backend.queue, backend.dead

    async def kill(n: int) -> list[str]:
        await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(n)])
        for claim in await _claim_all(queue):
            await queue.finish(claim, Failed(BOOM, GiveUp(1)))
        return [r.id for r in (await dead.list(limit=100)).items]

    assert len(await kill(3)) == 3
    assert len(await dead.retry_all()) == 3
    assert (await dead.list()).items == ()
    retried = await _claim_all(queue)
    assert len(retried) == 3
    for claim in retried:  # and they fail again
        await queue.finish(claim, Failed(BOOM, GiveUp(1)))
    ids = [r.id for r in (await dead.list()).items]
    assert len(ids) == 3
    await dead.delete(ids[0])
    with pytest.raises(DeadLetterNotFoundError):
        await dead.delete(ids[0])
    assert await dead.purge() == 2
    assert (await queue.snapshot()).dead == 0


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


async def test_cancel_only_waiting_runs(backend: Subject) -> None:
    """Queued runs can be cancelled and are never claimed; active ones cannot be."""
    queue = backend.queue
    waiting, running = await queue.enqueue([EnqueueRequest("job"), EnqueueRequest("job")])
    await queue.claim("w1", 1, LEASE)
    with pytest.raises(IllegalTransitionError):
        await queue.cancel(waiting.run_id)  # the first one was claimed: it is active
    cancelled = await queue.cancel(running.run_id)
    assert cancelled.state is RunState.CANCELLED
    assert await _claim_all(queue) == []
    with pytest.raises(RunNotFoundError):
        await queue.cancel("nope")


async def test_history_pages_newest_first_and_filters(backend: Subject) -> None:
    """History lists newest first, page by page, per job and by state."""
    queue, history = backend.queue, backend.history
    clock = backend.clock
    ids = []
    for i in range(5):
        [e] = await queue.enqueue([EnqueueRequest("a" if i % 2 else "b", {"i": i})])
        ids.append(e.run_id)
        clock.advance(1)
    await queue.enqueue([EnqueueRequest("b", {"i": n}) for n in range(5, 8)])  # one millisecond
    seen: list[str] = []
    cursor = None
    while True:
        page = await history.list(cursor=cursor, limit=3)
        seen.extend(r.id for r in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 8
    assert seen[-5:] == ids[::-1]
    only_a = await history.list(job="a")
    assert [r.payload["i"] for r in only_a.items] == [3, 1]
    [claim] = await queue.claim("w1", 1, LEASE)
    await queue.finish(claim, Succeeded())
    done = await history.list(states=frozenset({RunState.SUCCEEDED}))
    assert [r.id for r in done.items] == [claim.run.id]


async def test_clean_removes_old_finished_runs_only(backend: Subject) -> None:
    """Cleaning drops finished runs older than the cut-off and keeps waiting ones."""
    queue, history = backend.queue, backend.history
    clock = backend.clock
    old_done, old_waiting = await queue.enqueue([EnqueueRequest("job"), EnqueueRequest("job")])
    [claim] = await queue.claim("w1", 1, LEASE)
    await queue.finish(claim, Succeeded())
    clock.advance(timedelta(days=91))
    [recent] = await queue.enqueue([EnqueueRequest("job")])
    removed = await history.clean(clock.now() - timedelta(days=90))
    assert removed == 1
    with pytest.raises(RunNotFoundError):
        await history.get(old_done.run_id)
    assert (await history.get(old_waiting.run_id)).state is RunState.QUEUED
    assert (await history.get(recent.run_id)).state is RunState.QUEUED


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


@pytest.mark.parametrize("cursor", ["e:0", "nonsense", "12:x"])
async def test_a_forged_cursor_is_refused(backend: Subject, cursor: str) -> None:
    """A cursor this store never handed out is a clear validation error, not a crash."""
    with pytest.raises(InvalidCursorError):
        await backend.history.list(cursor=cursor)
    with pytest.raises(InvalidCursorError):
        await backend.dead.list(cursor=cursor)
