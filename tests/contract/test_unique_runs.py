"""Unique jobs on every backend: while a run holding a unique key is unfinished, an enqueue
with that key keeps it (answering its id) or replaces it (cancelling a waiting holder)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hub_scheduler.domain.limits import OnDuplicate
from hub_scheduler.domain.model import ErrorInfo, RunState
from hub_scheduler.domain.ports import Enqueued, EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")


def _unique(key: str = "unique:report", mode: OnDuplicate = OnDuplicate.KEEP) -> EnqueueRequest:
    return EnqueueRequest("report", idempotency_key=key, on_duplicate=mode)


async def _one(backend: Subject, request: EnqueueRequest) -> Enqueued:
    [answer] = await backend.queue.enqueue([request])
    return answer


async def test_keep_answers_the_unfinished_holder_until_it_ends(backend: Subject) -> None:
    """Waiting, running and waiting for a retry, the holder is the answer; once it ended,
    the next enqueue creates a run again."""
    first = await _one(backend, _unique())
    assert await _one(backend, _unique()) == Enqueued(first.run_id, created=False)
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    assert (await _one(backend, _unique())).run_id == first.run_id
    await backend.queue.finish(claim, Failed(BOOM, RetryAfter(timedelta(seconds=5), 2)))
    assert (await _one(backend, _unique())).run_id == first.run_id
    backend.clock.advance(timedelta(seconds=5))
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Succeeded())
    second = await _one(backend, _unique())
    assert second.created
    assert second.run_id != first.run_id


async def test_keys_are_independent_and_one_batch_keeps_one(backend: Subject) -> None:
    """Two keys hold two runs; two enqueues of one key in one batch make one run."""
    a1, b1, a2 = await backend.queue.enqueue(
        [_unique("unique:a"), _unique("unique:b"), _unique("unique:a")]
    )
    assert (a1.created, b1.created, a2) == (True, True, Enqueued(a1.run_id, created=False))
    assert (await backend.queue.snapshot()).waiting == 2


async def test_replace_cancels_a_waiting_holder_but_keeps_a_running_one(
    backend: Subject,
) -> None:
    """Replace: the waiting holder is cancelled and the new run enqueued; a running holder
    cannot be replaced, so it is the answer."""
    replace = _unique(mode=OnDuplicate.REPLACE)
    first = await _one(backend, replace)
    second = await _one(backend, replace)
    assert second.created
    assert (await backend.history.get(first.run_id)).state is RunState.CANCELLED
    [claim] = await backend.queue.claim("w1", 10, LEASE)
    assert claim.run.id == second.run_id
    assert await _one(backend, replace) == Enqueued(second.run_id, created=False)


async def test_a_dead_holder_frees_its_key(backend: Subject) -> None:
    """A dead run is finished: the key goes to the next enqueue."""
    first = await _one(backend, _unique())
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Failed(BOOM, GiveUp(1)))
    assert (await _one(backend, _unique())).run_id != first.run_id


async def test_a_plain_idempotency_key_keeps_its_window(backend: Subject) -> None:
    """Keys without on_duplicate still follow their window, finished or not."""
    plain = EnqueueRequest("report", idempotency_key="invoice-42")
    first = await _one(backend, plain)
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Succeeded())
    assert (await _one(backend, plain)).run_id == first.run_id


async def test_concurrent_enqueues_of_one_key_make_one_run(backend: Subject) -> None:
    """Ten enqueues of one key at once, each its own call (its own connection or script):
    one run is created, and every other answer names it."""
    answers = await asyncio.gather(*(_one(backend, _unique()) for _ in range(10)))
    created = [a for a in answers if a.created]
    assert len(created) == 1
    assert {a.run_id for a in answers} == {created[0].run_id}
    assert (await backend.queue.snapshot()).waiting == 1
