"""The Redis archive of finished runs (codec.py, "Archived runs"): a run leaves its own hash
when it ends, for a field of an archive hash, and reads back exactly as it ended; runs that
ended before the archive existed still read and clean; a job's history entries hold no run id
of their own. On fakeredis, a real Redis and a real Redis Cluster (the package's conftest)."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from hub_scheduler.adapters.redis import store as redis_store
from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.adapters.redis.keys import archive_bucket
from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    IllegalTransitionError,
    NewerLayoutError,
)
from hub_scheduler.domain.model import ErrorInfo, Priority, Run, RunState, RunTrigger
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from tests.integration.conftest import adapter_clock

LEASE = timedelta(seconds=30)
#: What a JSON round trip through Lua would change: float digits, integers past 2**53,
#: escapes, non-ASCII text and key order.
PAYLOAD = {
    "z": 0.30000000000000004,
    "big": 2**70,
    "text": 'naïve "quoted" \\ / \u2603',
    "nested": {"b": [1, 2.5, None, True], "a": {}},
    "a": -0.0,
}


@pytest.fixture
def backend(redis_adapter: RedisBackend) -> RedisBackend:
    """The Redis adapter on fakeredis, a real Redis and a real Redis Cluster."""
    return redis_adapter


async def _archived(backend: RedisBackend, run_id: str) -> bytes | None:
    keys = backend.store.keys
    return cast(
        "bytes | None",
        await backend.store.client.hget(keys.archive(archive_bucket(run_id)), run_id),
    )


def _settled(run: Run) -> dict[str, object]:
    """What a run's end may not change: everything but its state, end and attempts."""
    return {
        name: getattr(run, name)
        for name in ("id", "job", "enqueued_at", "priority", "trigger", "started_at",
                     "worker", "schedule_id", "slot", "idempotency_key", "trace_context",
                     "attempt", "stalls")
    }  # fmt: skip


async def test_a_finished_run_leaves_its_hash_and_reads_back_exactly(
    backend: RedisBackend,
) -> None:
    """A run that succeeded is gone from its own hash and found in the archive; read back,
    it is the run that was active with its end added, its payload byte for byte the same
    (float digits, big integers, escapes, key order), and its only attempt read off it."""
    client, keys = backend.store.client, backend.store.keys
    [enqueued] = await backend.queue.enqueue([
        EnqueueRequest(
            "sync", PAYLOAD, priority=Priority.HIGH, idempotency_key="k-1",
            trace_context={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
        )
    ])  # fmt: skip
    [claim] = await backend.queue.claim("worker-1", 1, LEASE)
    active = await backend.history.get(enqueued.run_id)
    # A field this code does not know (a newer version's) is kept, not dropped.
    await client.hset(keys.run(enqueued.run_id), "zz", 'new "field"')
    adapter_clock(backend).advance(timedelta(milliseconds=1234))
    await backend.queue.finish(claim, Succeeded())

    assert not await client.exists(keys.run(enqueued.run_id))
    assert await _archived(backend, enqueued.run_id)
    ended = await backend.history.get(enqueued.run_id)
    assert _settled(ended) == _settled(active)
    assert ended.state is RunState.SUCCEEDED
    assert ended.finished_at == active.started_at + timedelta(milliseconds=1234)  # type: ignore[operator]
    assert ended.payload == PAYLOAD
    assert list(ended.payload) == list(PAYLOAD)
    assert repr(ended.payload["z"]) == repr(PAYLOAD["z"])
    assert [(a.outcome.value, a.worker) for a in ended.attempts] == [("succeeded", "worker-1")]
    [listed] = (await backend.history.list(limit=5)).items
    assert listed == ended
    [flat] = await backend.store.scripts("load_runs", keys.history, keys.base, enqueued.run_id)
    assert dict(zip(flat[::2], flat[1::2], strict=True))[b"zz"] == b'new "field"'


async def test_a_dead_run_keeps_its_error_and_attempts_and_retries_from_the_archive(
    backend: RedisBackend,
) -> None:
    """A run that failed, was retried and died keeps both attempts, its error and its place
    in the dead letters; retrying the dead letter starts a new run with its payload."""
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("sync", PAYLOAD)])
    error = ErrorInfo("ValueError", "bad row 7", "Traceback ...")
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Failed(error, RetryAfter(timedelta(seconds=1), 2)))
    adapter_clock(backend).advance(timedelta(seconds=1))
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Failed(error, GiveUp(2)))

    assert await _archived(backend, enqueued.run_id)
    dead = await backend.dead_letters.get(enqueued.run_id)
    assert dead.state is RunState.DEAD
    assert dead.error == error
    assert [a.outcome.value for a in dead.attempts] == ["failed", "gave_up"]
    assert dead.attempt == 2
    new_id = await backend.dead_letters.retry(enqueued.run_id)
    retried = await backend.history.get(new_id)
    assert (retried.payload, retried.trigger, retried.origin_run_id) == (
        PAYLOAD, RunTrigger.DEAD_LETTER_RETRY, enqueued.run_id,
    )  # fmt: skip


async def test_cancelling_a_finished_run_is_refused_with_its_state(backend: RedisBackend) -> None:
    """A waiting run cancelled is archived cancelled; cancelling it again names the state it
    is in, as for a run still in its hash."""
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("sync")])
    cancelled = await backend.queue.cancel(enqueued.run_id)
    assert cancelled.state is RunState.CANCELLED
    assert await _archived(backend, enqueued.run_id)
    with pytest.raises(IllegalTransitionError, match="cancelled"):
        await backend.queue.cancel(enqueued.run_id)


async def test_runs_that_ended_in_their_own_hash_still_read_list_and_clean(
    backend: RedisBackend,
) -> None:
    """A run that ended before the archive existed (its record still in its hash, as data
    layout 2 kept it) reads, lists and cleans like an archived one."""
    client, keys = backend.store.client, backend.store.keys
    ids = []
    for _ in range(2):
        [enqueued] = await backend.queue.enqueue([EnqueueRequest("sync", {"n": 1})])
        [claim] = await backend.queue.claim("w1", 1, LEASE)
        await backend.queue.finish(claim, Succeeded())
        ids.append(enqueued.run_id)
    legacy = await backend.history.get(ids[0])
    # As layout 2 kept it: the record in a hash, nothing in the archive.
    flat = await backend.store.scripts("load_runs", keys.history, keys.base, ids[0])
    await client.hset(keys.run(ids[0]), mapping=dict(zip(flat[0][::2], flat[0][1::2], strict=True)))
    await client.hdel(keys.archive(archive_bucket(ids[0])), ids[0])

    assert await backend.history.get(ids[0]) == legacy
    assert [r.id for r in (await backend.history.list(job="sync", limit=5)).items] == ids[::-1]
    adapter_clock(backend).advance(timedelta(days=1))
    assert await backend.history.clean(adapter_clock(backend).now()) == 2
    assert not await client.exists(keys.run(ids[0]))
    assert await _archived(backend, ids[1]) is None
    assert (await backend.history.list(limit=5)).items == ()


async def test_a_jobs_history_entries_hold_no_run_id_of_their_own(
    backend: RedisBackend,
) -> None:
    """A job's history entry shares its id with the overall history's entry and holds an empty
    run id (half the bytes); listing the job, its latest run and a clean find the run through
    the overall entry."""
    client, keys = backend.store.client, backend.store.keys
    ids = []
    for job in ("a", "b", "a"):
        [enqueued] = await backend.queue.enqueue([EnqueueRequest(job)])
        [claim] = await backend.queue.claim("w1", 1, LEASE)
        await backend.queue.finish(claim, Succeeded())
        ids.append(enqueued.run_id)
        adapter_clock(backend).advance(timedelta(milliseconds=3))
    entries = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]", await client.xrange(keys.job_history("a"))
    )
    overall = cast("list[tuple[bytes, dict[bytes, bytes]]]", await client.xrange(keys.history))
    assert [fields for _, fields in entries] == [{b"r": b""}, {b"r": b""}]
    assert [entry_id for entry_id, _ in entries] == [overall[0][0], overall[2][0]]

    assert [r.id for r in (await backend.history.list(job="a", limit=5)).items] == [ids[2], ids[0]]
    assert (await backend.history.latest(["a", "b"]))["a"].id == ids[2]
    adapter_clock(backend).advance(timedelta(days=1))
    assert await backend.history.clean(adapter_clock(backend).now()) == 3
    assert await client.xlen(keys.history) == 0
    assert await client.xlen(keys.job_history("a")) == 0


async def test_an_archived_record_of_an_unknown_version_is_an_error_not_a_run(
    backend: RedisBackend,
) -> None:
    """A record a newer version archived in a format this code does not know is never read as
    a run: reading it fails."""
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("sync")])
    await backend.queue.cancel(enqueued.run_id)
    keys = backend.store.keys
    await backend.store.client.hset(
        keys.archive(archive_bucket(enqueued.run_id)), enqueued.run_id, "[9,0]"
    )
    with pytest.raises(BackendUnavailableError):
        await backend.history.get(enqueued.run_id)


async def test_a_layout_2_hub_moves_to_3_and_code_of_layout_2_refuses_it_after(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layout 3 reads layout 2's data as it is: the first process of this version only
    records the new layout, and a process of the version before then refuses the hub."""
    client, keys = backend.store.client, backend.store.keys
    await client.set(keys.layout, "2")
    await backend.queue.enqueue([EnqueueRequest("sync")])
    assert await client.get(keys.layout) == str(redis_store.LAYOUT_VERSION).encode()
    monkeypatch.setattr(redis_store, "LAYOUT_VERSION", 2)
    older = RedisBackend.on_client(client, backend.url, backend.config)
    with pytest.raises(NewerLayoutError):
        await older.queue.enqueue([EnqueueRequest("sync")])


async def test_a_record_that_cannot_be_read_holds_up_nothing_else(backend: RedisBackend) -> None:
    """A dead letter whose archived record cannot be read stays a dead letter when retried (the
    retry fails before it changes anything), and a clean keeps such a run and goes on past it."""
    client, keys = backend.store.client, backend.store.keys
    [dead] = await backend.queue.enqueue([EnqueueRequest("sync")])
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Failed(ErrorInfo("E", "x"), GiveUp(1)))
    [unreadable] = await backend.queue.enqueue([EnqueueRequest("sync")])
    await backend.queue.cancel(unreadable.run_id)
    [fine] = await backend.queue.enqueue([EnqueueRequest("sync")])
    await backend.queue.cancel(fine.run_id)
    for run_id in (dead.run_id, unreadable.run_id):
        await client.hset(keys.archive(archive_bucket(run_id)), run_id, "[9,0]")

    with pytest.raises(BackendUnavailableError):
        await backend.dead_letters.retry(dead.run_id)
    assert await client.zscore(keys.dead, dead.run_id) is not None
    adapter_clock(backend).advance(timedelta(days=1))
    assert await backend.history.clean(adapter_clock(backend).now()) == 1
    assert await _archived(backend, fine.run_id) is None
    assert await _archived(backend, unreadable.run_id) == b"[9,0]"


async def test_a_record_of_another_format_ends_in_its_own_hash(backend: RedisBackend) -> None:
    """A run whose record is not format 1 (written by hand, or by a version to come) is not
    archived by a guess at its fields: it ends in its own hash, as before the archive, and an
    earlier error goes with its success."""
    client, keys = backend.store.client, backend.store.keys
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("sync")])
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await client.hset(keys.run(enqueued.run_id), mapping={"v": "2", "err": "{}"})
    # Settled without reading the run back: this code does not read format 2.
    result = await backend.queue.exchange("w1", [(claim, Succeeded())], 0, LEASE)
    assert list(result.applied) == [True]
    assert await _archived(backend, enqueued.run_id) is None
    record = cast("dict[bytes, bytes]", await client.hgetall(keys.run(enqueued.run_id)))
    assert (record[b"st"], record[b"v"], b"err" in record) == (b"succeeded", b"2", False)


async def test_a_clean_drops_a_job_entry_whose_overall_entry_is_gone(
    backend: RedisBackend,
) -> None:
    """A job's entry names its run through the overall entry; when that is gone (a hand-edited
    store) the run cannot be named, and a clean drops the entry rather than stop at it."""
    client, keys = backend.store.client, backend.store.keys
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("sync")])
    await backend.queue.cancel(enqueued.run_id)
    [(entry_id, _)] = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]", await client.xrange(keys.history)
    )
    await client.xdel(keys.history, entry_id)
    assert (await backend.history.list(job="sync", limit=5)).items == ()
    adapter_clock(backend).advance(timedelta(days=1))
    assert await backend.history.clean(adapter_clock(backend).now()) == 1
    assert await client.xlen(keys.job_history("sync")) == 0
