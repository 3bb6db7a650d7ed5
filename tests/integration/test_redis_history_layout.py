"""The Redis history layout: the move from the sorted sets of data layout 1 to the streams
of layout 2 (what the layout serves, listing and cleaning, is in tests/contract)."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from hub_scheduler.adapters.redis import store as redis_store
from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.domain.errors import NewerLayoutError
from hub_scheduler.domain.model import ErrorInfo, RunState
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp
from tests.integration.conftest import adapter_clock

LEASE = timedelta(seconds=30)
_Rows = list[tuple[bytes, dict[bytes, bytes]]]  # XRANGE's reply
DEAD = frozenset({RunState.DEAD})


@pytest.fixture
def backend(redis_adapter: RedisBackend) -> RedisBackend:
    """The Redis adapter on fakeredis and on a real Redis (see the package's conftest)."""
    return redis_adapter


async def _run_to_end(backend: RedisBackend, job: str, *, dies: bool) -> str:
    """Enqueue one run of `job` and finish it: succeeded, or dead at its first attempt."""
    [enqueued] = await backend.queue.enqueue([EnqueueRequest(job)])
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    outcome = Failed(ErrorInfo("E", "x"), GiveUp(1)) if dies else Succeeded()
    await backend.queue.finish(claim, outcome)
    adapter_clock(backend).advance(timedelta(milliseconds=5))
    return enqueued.run_id


async def _as_layout_1(backend: RedisBackend) -> None:
    """Rewrite the history index as layout 1 (an earlier version) kept it: enqueue times (ms)
    as scores in two sorted sets, no streams, no layout key."""
    client, keys = backend.store.client, backend.store.keys
    jobs = [cast("bytes", j).decode() for j in await client.smembers(keys.jobs)]
    # A job's entry names no run: it is the overall entry's of the same id.
    runs = {
        entry_id: fields[b"r"]
        for entry_id, fields in cast("_Rows", await client.xrange(keys.history))
    }
    for key, job in [(keys.history, None), *((keys.job_history(j), j) for j in jobs)]:
        legacy = keys.job_runs(job) if job else keys.runs
        for entry_id, fields in cast("_Rows", await client.xrange(key)):
            run_id = fields[b"r"] or runs[entry_id]
            await client.zadd(legacy, {run_id.decode(): int(entry_id.split(b"-")[0])})
        await client.delete(key)
    await client.delete(keys.state_history("dead"), keys.layout)


async def test_a_layout_1_history_is_moved_to_streams_by_the_first_process(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call of a new process moves a layout 1 index to the streams, in batches,
    keeping the order and the dead runs; the sorted sets are gone after, and new runs list
    on top."""
    monkeypatch.setattr(redis_store, "LAYOUT_MOVE_BATCH", 2)
    runs = [await _run_to_end(backend, job, dies=n == 1) for n, job in enumerate("ababa")]
    await _as_layout_1(backend)
    client, keys = backend.store.client, backend.store.keys
    reopened = RedisBackend.on_client(client, backend.url, backend.config)  # a new process
    listed = await reopened.history.list(limit=50)
    assert [r.id for r in listed.items] == runs[::-1]
    assert [r.id for r in (await reopened.history.list(job="b", limit=50)).items] == [
        runs[3], runs[1],
    ]  # fmt: skip
    assert [r.id for r in (await reopened.history.list(states=DEAD)).items] == [runs[1]]
    assert not await client.exists(keys.runs, keys.job_runs("a"), keys.job_runs("b"))
    assert await client.get(keys.layout) == str(redis_store.LAYOUT_VERSION).encode()
    newer = await _run_to_end(reopened, "a", dies=False)
    assert (await reopened.history.list(limit=1)).items[0].id == newer
    assert await client.xlen(keys.history) == len(runs) + 1


async def test_runs_of_the_processes_that_go_on_during_a_move_are_kept(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that dies while moving the index leaves it to the next one once its lock
    expires; processes started meanwhile go on with the new layout, and the runs they make
    are listed on top of the moved history when the move ends."""
    monkeypatch.setattr(redis_store, "LAYOUT_MOVE_BATCH", 2)
    old = [await _run_to_end(backend, job, dies=False) for job in "abab"]
    await _as_layout_1(backend)
    client, keys = backend.store.client, backend.store.keys
    # A first process begins the move, copies one batch, and dies.
    assert [x.decode() if isinstance(x, bytes) else x for x in await backend.store.scripts(
        "layout_begin", keys.history, keys.base, redis_store.LAYOUT_VERSION, "dying", 30_000
    )] == ["move", 4]  # fmt: skip
    await backend.store.scripts("layout_move", keys.history, keys.base, "dying", 30_000, 0, 2)
    # Another starts while its lock holds: it goes on, indexing a new run in the new layout.
    meanwhile = RedisBackend.on_client(client, backend.url, backend.config)
    during = await _run_to_end(meanwhile, "b", dies=False)
    assert [r.id for r in (await meanwhile.history.list(limit=50)).items] == [during]
    await client.delete(keys.layout_lock)  # the dying process's lock expires
    later = RedisBackend.on_client(client, backend.url, backend.config)
    assert [r.id for r in (await later.history.list(limit=50)).items] == [during, *old[::-1]]
    assert [r.id for r in (await later.history.list(job="b", limit=50)).items] == [
        during, old[3], old[1],
    ]  # fmt: skip
    assert not await client.exists(keys.runs, keys.layout_lock)
    # The first process, had it only stalled, finds its lock gone and changes nothing.
    scripts, base = backend.store.scripts, keys.base
    assert await scripts("layout_move", keys.history, base, "dying", 30_000, 2, 2) == -1
    assert await scripts("layout_finish", keys.history, base, "dying", 2) == -1
    assert [r.id for r in (await later.history.list(limit=50)).items] == [during, *old[::-1]]


async def test_a_layout_written_by_a_newer_version_is_refused(backend: RedisBackend) -> None:
    """A hub whose data a newer hub_scheduler wrote (a layout this code does not know) is
    refused with a clear error, and nothing is written to it."""
    client, keys = backend.store.client, backend.store.keys
    await client.set(keys.layout, str(redis_store.LAYOUT_VERSION + 1))
    with pytest.raises(NewerLayoutError, match="written by a newer hub_scheduler"):
        await backend.queue.enqueue([EnqueueRequest("report")])
    assert not await client.exists(keys.history)


async def test_a_run_made_during_a_move_at_a_moved_runs_instant_keeps_its_job(
    backend: RedisBackend,
) -> None:
    """A process whose clock runs behind makes a run, during a move, at the very millisecond
    of a moved one: merging the overall history gives it another entry id, and its job's index
    still finds it (and only it), so listing, the latest run and a clean stay right."""
    moved = await _run_to_end(backend, "a", dies=False)
    moved_at = (await backend.history.get(moved)).enqueued_at
    await _as_layout_1(backend)
    client, keys = backend.store.client, backend.store.keys
    scripts, base = backend.store.scripts, keys.base
    version = redis_store.LAYOUT_VERSION
    await scripts("layout_begin", keys.history, base, version, "mover", 30_000)
    await scripts("layout_move", keys.history, base, "mover", 30_000, 0, 100)
    clock = adapter_clock(backend)
    ahead = clock.current
    clock.current = moved_at  # the other process's clock
    meanwhile = RedisBackend.on_client(client, backend.url, backend.config)
    during = await _run_to_end(meanwhile, "b", dies=False)
    clock.current = ahead
    assert await scripts("layout_finish", keys.history, base, "mover", version) == 1

    later = RedisBackend.on_client(client, backend.url, backend.config)
    assert [r.id for r in (await later.history.list(job="b", limit=5)).items] == [during]
    assert [r.id for r in (await later.history.list(job="a", limit=5)).items] == [moved]
    latest = await later.history.latest(["a", "b"])
    assert (latest["a"].id, latest["b"].id) == (moved, during)
    clock.advance(timedelta(days=1))
    assert await later.history.clean(clock.now()) == 2
    assert (await later.history.list(limit=5)).items == ()
