"""The dead-letter queue on every backend: runs that used every attempt, kept with their
payload and error; retried as new linked runs, deleted, purged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import DeadLetterNotFoundError
from hub_scheduler.domain.model import ErrorInfo, Priority, RunState, RunTrigger
from hub_scheduler.domain.ports import EnqueueRequest, Failed
from hub_scheduler.domain.retry import GiveUp
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")


async def _kill(backend: Subject, *requests: EnqueueRequest) -> list[str]:
    """Enqueue `requests`, claim them and fail each for good; their ids, in order."""
    answers = await backend.queue.enqueue(list(requests))
    for claim in await backend.queue.claim("w1", len(requests), LEASE):
        await backend.queue.finish(claim, Failed(BOOM, GiveUp(claim.run.attempt)))
    return [answer.run_id for answer in answers]


async def test_dead_letter_retry_starts_a_linked_series(backend: Subject) -> None:
    """Retrying a dead letter enqueues a fresh run (attempt 1) that points to the dead one."""
    dead, history = backend.dead, backend.history
    [first] = await _kill(backend, EnqueueRequest("job", {"x": 1}, Priority.HIGH))
    new_id = await dead.retry(first)
    new = await history.get(new_id)
    assert (new.state, new.attempt, new.origin_run_id, new.trigger, new.priority, new.payload) == (
        RunState.QUEUED,
        1,
        first,
        RunTrigger.DEAD_LETTER_RETRY,
        Priority.HIGH,
        {"x": 1},
    )
    assert (await dead.list()).items == ()
    with pytest.raises(DeadLetterNotFoundError):
        await dead.retry(first)


async def test_dead_letters_retry_all_delete_and_purge(backend: Subject) -> None:
    """retry_all requeues every dead letter; delete forgets one; purge forgets the rest."""
    queue, dead = backend.queue, backend.dead
    await _kill(backend, *(EnqueueRequest("job", {"i": i}) for i in range(3)))
    assert len(await dead.retry_all()) == 3
    assert (await dead.list()).items == ()
    retried = await queue.claim("w1", 10, LEASE)
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
    assert await dead.purge() == 0


async def test_a_dead_letter_keeps_its_payload_attempts_and_error(backend: Subject) -> None:
    """get returns the dead run as it died; an unknown id is DeadLetterNotFoundError."""
    [run_id] = await _kill(backend, EnqueueRequest("invoice", {"id": 7}, Priority.HIGH))
    letter = await backend.dead.get(run_id)
    assert (letter.id, letter.state, letter.payload, letter.priority, letter.error) == (
        run_id,
        RunState.DEAD,
        {"id": 7},
        Priority.HIGH,
        BOOM,
    )
    assert letter.finished_at == backend.clock.now()
    with pytest.raises(DeadLetterNotFoundError):
        await backend.dead.get("nope")


async def test_dead_letters_page_newest_first(backend: Subject) -> None:
    """Dead letters list newest first, page by page, each once."""
    ids = []
    for i in range(5):
        ids += await _kill(backend, EnqueueRequest("job", {"i": i}))
        backend.clock.advance(1)
    first = await backend.dead.list(limit=3)
    assert first.next_cursor is not None
    second = await backend.dead.list(first.next_cursor, limit=3)
    assert [r.id for r in (*first.items, *second.items)] == ids[::-1]
    assert second.next_cursor is None


async def test_retry_all_keeps_the_order_the_runs_died_in(backend: Subject) -> None:
    """retry_all answers the new run ids oldest dead letter first, each linked to its origin."""
    dead = []
    for i in range(3):
        dead += await _kill(backend, EnqueueRequest("job", {"i": i}))
        backend.clock.advance(1)
    new_ids = await backend.dead.retry_all()
    origins = [(await backend.history.get(new_id)).origin_run_id for new_id in new_ids]
    assert origins == dead
