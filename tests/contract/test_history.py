"""Run history on every backend: every run's latest state for the retention, newest first,
filtered, paged and cleaned."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import InvalidCursorError, RunNotFoundError
from hub_scheduler.domain.model import ErrorInfo, RunState
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)


async def test_an_unknown_run_is_not_found(backend: Subject) -> None:
    """get of an id never enqueued raises RunNotFoundError naming it."""
    with pytest.raises(RunNotFoundError, match="run 'nope' not found"):
        await backend.history.get("nope")


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


async def test_clean_keeps_dead_letters(backend: Subject) -> None:
    """Cleaning history never empties the dead-letter queue: a dead letter stays until it is
    retried or deleted, and is cleaned like other history after that."""
    queue, history, clock = backend.queue, backend.history, backend.clock
    kept, retried = await queue.enqueue([EnqueueRequest("job"), EnqueueRequest("job")])
    for claim in await queue.claim("w1", 2, LEASE):
        await queue.finish(claim, Failed(ErrorInfo("ValueError", "x"), GiveUp(1)))
    clock.advance(timedelta(days=91))
    assert await history.clean(clock.now()) == 0
    assert {r.id for r in (await backend.dead.list()).items} == {kept.run_id, retried.run_id}
    assert (await history.get(kept.run_id)).state is RunState.DEAD
    await backend.dead.retry(retried.run_id)
    assert await history.clean(clock.now() - timedelta(days=90)) == 1
    assert [r.id for r in (await backend.dead.list()).items] == [kept.run_id]
    with pytest.raises(RunNotFoundError):
        await history.get(retried.run_id)


@pytest.mark.parametrize(
    "cursor", ["e:0", "nonsense", "12:x", "-1:99999999999999999999", "99999999999999999999999:1"]
)
async def test_a_forged_cursor_is_refused(backend: Subject, cursor: str) -> None:
    """A cursor this store never handed out is a clear validation error, not a crash."""
    with pytest.raises(InvalidCursorError):
        await backend.history.list(cursor=cursor)
    with pytest.raises(InvalidCursorError):
        await backend.dead.list(cursor=cursor)


async def test_clean_can_be_limited_to_some_final_states(backend: Subject) -> None:
    """Cleaning only dead runs keeps old succeeded ones; waiting and active runs always stay."""
    queue, history, clock = backend.queue, backend.history, backend.clock
    ok, doomed, active, waiting = await queue.enqueue([EnqueueRequest("job") for _ in range(4)])
    first, second, _ = await queue.claim("w1", 3, LEASE)
    await queue.finish(first, Succeeded())
    await queue.finish(second, Failed(ErrorInfo("ValueError", "x"), GiveUp(1)))
    await backend.dead.delete(doomed.run_id)  # out of the dead-letter queue: history only
    clock.advance(timedelta(days=91))
    cut_off = clock.now() - timedelta(days=90)
    assert await history.clean(cut_off, frozenset({RunState.DEAD})) == 1
    with pytest.raises(RunNotFoundError):
        await history.get(doomed.run_id)
    kept = {r: (await history.get(r)).state for r in (ok.run_id, active.run_id, waiting.run_id)}
    assert kept == {
        ok.run_id: RunState.SUCCEEDED,
        active.run_id: RunState.ACTIVE,
        waiting.run_id: RunState.QUEUED,
    }
    assert await history.clean(cut_off) == 1


async def _finish_all(backend: Subject, count: int, *, dies: bool = False) -> list[str]:
    """Enqueue `count` runs of ``job`` and end them all: succeeded, or dead at once."""
    queue = backend.queue
    ids = [e.run_id for e in await queue.enqueue([EnqueueRequest("job") for _ in range(count)])]
    outcome = Failed(ErrorInfo("E", "gone"), GiveUp(1)) if dies else Succeeded()
    while claims := await queue.claim("w1", 300, LEASE):
        await queue.exchange("w1", [(c, outcome) for c in claims], 0, LEASE)
    return ids


async def test_dead_runs_are_found_at_once_among_many_newer_runs(backend: Subject) -> None:
    """Two dead runs under 300 newer successes: the first page of a listing by state has
    both, newest first (a backend that scanned the history would read a bounded window of
    the newest runs and answer an empty page with a cursor)."""
    dead = await _finish_all(backend, 2, dies=True)
    backend.clock.advance(1)
    await _finish_all(backend, 300)
    page = await backend.history.list(states=frozenset({RunState.DEAD}), limit=5)
    assert (sorted(r.id for r in page.items), page.next_cursor) == (sorted(dead), None)
    assert [r.state for r in page.items] == [RunState.DEAD, RunState.DEAD]


async def test_a_clean_goes_past_the_dead_letters_it_keeps(backend: Subject) -> None:
    """A dead letter at the head of the history (kept until an admin acts) does not stop a
    clean from removing the 600 old runs after it; the dead letter stays listed, by state
    too, and so does a run newer than the cut-off."""
    [kept] = await _finish_all(backend, 1, dies=True)
    backend.clock.advance(1)
    await _finish_all(backend, 600)
    backend.clock.advance(timedelta(days=1))
    cutoff = backend.clock.now()
    [newest] = await _finish_all(backend, 1)
    assert await backend.history.clean(cutoff) == 600
    assert [r.id for r in (await backend.history.list(limit=50)).items] == [newest, kept]
    dead = await backend.history.list(states=frozenset({RunState.DEAD}))
    assert [r.id for r in dead.items] == [kept]
