"""A hub over several shards (``?shards=N``): what holds across them, and what a Cluster gets.

The contract suite runs on three shards as on every backend; these tests assert what is
particular to sharding: where things live, order per job, fairness between shards, merged
listings that neither lose nor repeat an item, and wake-ups from any shard.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from redis.asyncio.cluster import RedisCluster

from hub_scheduler import Hub
from hub_scheduler.adapters.backends import open_backend
from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.adapters.sharded import ShardedBackend, cluster_slot, shard_of, shard_prefixes
from hub_scheduler.domain.errors import (
    InvalidCursorError,
    InvalidScheduleError,
    RunNotFoundError,
    ScheduleExistsError,
)
from hub_scheduler.domain.model import ErrorInfo, Priority, Progress, Run, RunState
from hub_scheduler.domain.ports import (
    BackendConfig,
    EnqueueRequest,
    Failed,
    Page,
    Succeeded,
)
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.domain.schedule import Cron, Every, Schedule
from hub_scheduler.testing import FakeClock, run_until_idle
from tests.conftest import drop_keys, fresh_prefix
from tests.contract.test_signals import _hear as hear

START = datetime(2026, 6, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)
#: Jobs whose names put one on each of three shards (checked by `test_the_jobs_cover_...`).
JOBS = ("alpha", "gamma", "zeta")


def _sharded(backend: object) -> ShardedBackend:
    assert isinstance(backend, ShardedBackend)
    return backend


@contextlib.asynccontextmanager
async def opened(
    url: str = "memory://?shards=3",
) -> AsyncIterator[tuple[ShardedBackend, FakeClock]]:
    """A sharded backend on a fake clock under a fresh prefix (its keys dropped after)."""
    clock = FakeClock(START)
    backend = _sharded(open_backend(url, BackendConfig(clock, fresh_prefix())))
    try:
        yield backend, clock
    finally:
        if not url.startswith("memory"):
            for shard in backend.shards:
                await drop_keys(shard)
        await backend.aclose()


def test_the_jobs_cover_the_three_shards() -> None:
    """The test jobs land on shards 0, 1 and 2 (so tests here span every shard)."""
    assert sorted(shard_of(job, 3) for job in JOBS) == [0, 1, 2]


async def test_the_url_opens_shards_under_their_own_prefixes() -> None:
    """``?shards=3`` gives 3 inner backends under the shard prefixes, the hub's own config,
    and the URL as given with its password masked; ``shards=1`` is the plain backend."""
    config = BackendConfig(FakeClock(START), "shop")
    backend = _sharded(open_backend("redis://:s3cret@127.0.0.1:1/0?shards=3", config))
    try:
        assert backend.url == "redis://:***@127.0.0.1:1/0?shards=3"
        assert backend.config == config
        assert [s.config.prefix for s in backend.shards] == shard_prefixes("shop", 3)
        assert {s.url for s in backend.shards} == {"redis://:***@127.0.0.1:1/0"}
    finally:
        await backend.aclose()
    plain = open_backend("memory://?shards=1", config)
    try:
        assert isinstance(plain, RedisBackend)
    finally:
        await plain.aclose()


async def test_a_jobs_runs_schedules_and_pause_live_on_its_shard() -> None:
    """Runs, schedules and the pause flag of a job are stored on shard crc32(job) % 3 only."""
    async with opened() as (backend, clock):
        [run] = await backend.queue.enqueue([EnqueueRequest("gamma")])
        await backend.schedules.create(
            Schedule(Every(timedelta(minutes=1)), job="gamma", id="b"), clock.now()
        )
        await backend.queue.pause("gamma")
        home = shard_of("gamma", 3)
        for index, shard in enumerate(backend.shards):
            snapshot = await shard.queue.snapshot()
            found = [s.schedule.id for s in await shard.schedules.list()]
            if index == home:
                assert (await shard.history.get(run.run_id)).job == "gamma"
                assert (found, snapshot.paused_jobs, snapshot.waiting) == (
                    ["b"],
                    frozenset({"gamma"}),
                    1,
                )
            else:
                with pytest.raises(RunNotFoundError):
                    await shard.history.get(run.run_id)
                assert (found, snapshot.paused_jobs) == ([], frozenset())


async def test_results_live_on_the_runs_shard_found_once_per_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run's progress and result are stored on its job's shard; reporting progress again
    and storing the result do not ask every shard where the run is each time."""
    async with opened() as (backend, clock):
        [run] = await backend.queue.enqueue([EnqueueRequest("gamma")])
        lookups: list[str] = []

        class Counted:
            """A shard's history that counts the lookups by id asked of it."""

            def __init__(self, inner: Any) -> None:
                self.inner = inner

            async def get(self, run_id: str) -> Run:
                lookups.append(run_id)
                return cast("Run", await self.inner.get(run_id))

        histories = tuple(Counted(h) for h in backend.results.histories)
        monkeypatch.setattr(backend.results, "histories", histories)
        for fraction in (0.25, 0.5, 0.75):
            await backend.results.set_progress(run.run_id, Progress(clock.now(), fraction))
        await backend.results.set_result(run.run_id, {"rows": 3})
        assert lookups == [run.run_id] * len(backend.shards)  # one lookup, of every shard
        home = backend.shards[shard_of("gamma", 3)]
        stored = await home.results.result(run.run_id)
        assert stored is not None
        assert stored.value == {"rows": 3}
        assert (await home.results.progress(run.run_id)) == (
            await backend.results.progress(run.run_id)
        )


async def test_audit_presence_and_shared_values_live_on_the_home_shard() -> None:
    """The audit log, presence and shared store are shard 0's."""
    async with opened() as (backend, _):
        home = backend.shards[0]
        assert (backend.audit, backend.presence, backend.shared) == (
            home.audit,
            home.presence,
            home.shared,
        )


async def test_order_holds_per_job_across_shards() -> None:
    """Claimed one by one, each job's runs come highest priority first, FIFO within one,
    whatever the other shards hold."""
    async with opened() as (backend, clock):
        requests = []
        for n in range(6):
            for job in JOBS:
                priority = Priority.HIGH if n % 3 == 2 else Priority.NORMAL
                requests.append(EnqueueRequest(job, {"n": n}, priority=priority))
            clock.advance(1)
        await backend.queue.enqueue(requests)
        claimed: dict[str, list[int]] = {job: [] for job in JOBS}
        while claims := await backend.queue.claim("w", 1, LEASE):
            claimed[claims[0].run.job].append(int(claims[0].run.payload["n"]))
        assert claimed == {job: [2, 5, 0, 1, 3, 4] for job in JOBS}


async def test_claims_take_from_the_shards_in_turn() -> None:
    """Each claim starts one shard further: three claims of one take one run per shard; a
    claim of more than a shard holds fills up from the next shards."""
    async with opened() as (backend, _):
        await backend.queue.enqueue([EnqueueRequest(job) for job in JOBS for _ in range(4)])
        singles = [(await backend.queue.claim("w", 1, LEASE))[0].run.job for _ in range(3)]
        assert sorted(singles) == sorted(JOBS)
        batch = await backend.queue.claim("w", 5, LEASE)
        assert len(batch) == 5
        assert len({c.run.job for c in batch}) == 2  # 3 from one shard, then 2 from the next
        rest = await backend.queue.claim("w", 100, LEASE)
        assert (len(rest), await backend.queue.claim("w", 1, LEASE)) == (4, [])


async def test_an_exchange_settles_each_outcome_on_its_shard_in_order() -> None:
    """One exchange settles runs of every shard (flags in the order given, a stale token
    refused) and claims the next runs."""
    async with opened() as (backend, clock):
        await backend.queue.enqueue([EnqueueRequest(job) for job in JOBS for _ in range(2)])
        first = await backend.queue.claim("w", 3, LEASE)
        first += await backend.queue.claim("w", 3, LEASE)
        stale = first[1].__class__(first[1].run, first[1].token + 7, first[1].lease_until)
        boom = ErrorInfo("Boom", "no")
        result = await backend.queue.exchange(
            "w",
            [
                (first[0], Succeeded()),
                (stale, Succeeded()),
                (first[2], Failed(boom, GiveUp(1))),
                (first[3], Succeeded()),
            ],
            10,
            LEASE,
        )
        assert result.applied == (True, False, True, True)
        states = [(await backend.history.get(c.run.id)).state for c in first]
        assert states[0] == states[3] == RunState.SUCCEEDED
        assert (states[1], states[2]) == (RunState.ACTIVE, RunState.DEAD)
        assert result.claims == ()
        assert (await backend.dead_letters.get(first[2].run.id)).job == first[2].run.job
        del clock


async def test_the_snapshot_adds_the_shards_up() -> None:
    """Depth, delayed, active and outcome counts are sums, the oldest wait is the longest of
    any shard, paused jobs are all of them; a queue pause is every shard's."""
    async with opened() as (backend, clock):
        await backend.queue.enqueue([EnqueueRequest("alpha", priority=Priority.LOW)])
        clock.advance(10)
        await backend.queue.enqueue(
            [
                EnqueueRequest("gamma"),
                EnqueueRequest("gamma"),
                EnqueueRequest("zeta"),
                EnqueueRequest("zeta"),
                EnqueueRequest("zeta", run_at=clock.now() + timedelta(hours=1)),
            ]
        )
        await backend.queue.pause("gamma")
        await backend.queue.pause("alpha")
        zeta = backend.shards[shard_of("zeta", 3)].queue
        [claim] = await zeta.claim("w", 1, LEASE)
        await zeta.finish(claim, Succeeded())
        [claim] = await backend.queue.claim("w", 1, LEASE)  # the only claimable run (zeta)
        assert claim.run.job == "zeta"
        snapshot = await backend.queue.snapshot()
        assert (snapshot.waiting, snapshot.depth[Priority.CRITICAL]) == (3, 0)
        assert (snapshot.delayed, snapshot.active, snapshot.succeeded) == (1, 1, 1)
        assert snapshot.paused_jobs == frozenset({"alpha", "gamma"})
        assert snapshot.oldest_waiting == timedelta(seconds=10)
        assert snapshot.active_by_worker == {"w": 1}
        assert not snapshot.paused
        await backend.queue.pause()
        assert all([(await s.queue.snapshot()).paused for s in backend.shards])
        assert (await backend.queue.snapshot()).paused
        await backend.queue.resume()
        assert not (await backend.queue.snapshot()).paused


async def _everything(backend: ShardedBackend, limit: int, **filters: object) -> list[Run]:
    """Every run the merged history lists, page after page of `limit`."""
    seen: list[Run] = []
    cursor = None
    for _ in range(1000):
        page: Page[Run] = await backend.history.list(cursor=cursor, limit=limit, **filters)  # type: ignore[arg-type]
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("the listing never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 8, 50])
async def test_merged_history_pages_lose_and_repeat_nothing(limit: int) -> None:
    """Paging the history of every shard yields each run exactly once, newest first, also
    when many runs share an instant and the shards hold very different numbers of runs."""
    async with opened() as (backend, clock):
        expected = []
        for step, counts in enumerate([(3, 0, 1), (0, 2, 2), (5, 1, 0), (1, 1, 1)]):
            requests = [
                EnqueueRequest(j) for j, n in zip(JOBS, counts, strict=True) for _ in range(n)
            ]
            expected += [a.run_id for a in await backend.queue.enqueue(requests)]
            clock.advance(1 if step != 1 else 0)
        seen = await _everything(backend, limit)
        assert sorted(r.id for r in seen) == sorted(expected)
        assert len(seen) == len(expected)
        stamps = [r.enqueued_at for r in seen]
        assert stamps == sorted(stamps, reverse=True)


async def test_merged_history_with_states_finds_every_match() -> None:
    """Filtered by state, the merged pages still give every matching run once."""
    async with opened() as (backend, clock):
        dead = []
        for n in range(12):
            [run] = await backend.queue.enqueue([EnqueueRequest(JOBS[n % 3])])
            clock.advance(1)
            if n % 4 == 0:
                dead.append(run.run_id)
        claims = await backend.queue.claim("w", 20, LEASE)
        for claim in sorted(claims, key=lambda c: c.run.enqueued_at):  # die in that order
            clock.advance(1)
            error = Failed(ErrorInfo("E", "x"), GiveUp(1))
            await backend.queue.finish(claim, error if claim.run.id in dead else Succeeded())
        for limit in (1, 2, 10):
            found = await _everything(backend, limit, states=frozenset({RunState.DEAD}))
            assert [r.id for r in found] == list(reversed(dead))
        letters: list[str] = []
        cursor = None
        while True:
            page = await backend.dead_letters.list(cursor, 1)
            letters += [r.id for r in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert letters == list(reversed(dead))


async def test_runs_added_while_paging_do_not_disturb_it() -> None:
    """Runs enqueued between two pages come before the first page, so the pages go on
    without losing or repeating any run they started with."""
    async with opened() as (backend, clock):
        before = []
        for n in range(9):
            before += [a.run_id for a in await backend.queue.enqueue([EnqueueRequest(JOBS[n % 3])])]
            clock.advance(1)
        first = await backend.history.list(limit=4)
        await backend.queue.enqueue([EnqueueRequest(job) for job in JOBS])
        rest: list[str] = []
        cursor = first.next_cursor
        while cursor is not None:
            page = await backend.history.list(cursor=cursor, limit=2)
            rest += [r.id for r in page.items]
            cursor = page.next_cursor
        assert [r.id for r in first.items] + rest == list(reversed(before))


@pytest.mark.parametrize(
    "cursor",
    [
        "junk",
        "s1.",
        "s1.!!!",
        "s1.WzFd",
        "s1.bnVsbA",
        "s1.W251bGwsbnVsbF0",
        "s1.WyJ4IixudWxsLG51bGxd",
    ],
)
async def test_a_forged_cursor_is_invalid(cursor: str) -> None:
    """A cursor this backend did not hand out (not ours, wrong shape or count, or one a
    shard refuses) is InvalidCursorError carrying that cursor."""
    async with opened() as (backend, _):
        await backend.queue.enqueue([EnqueueRequest(job) for job in JOBS])
        with pytest.raises(InvalidCursorError) as caught:
            await backend.history.list(cursor=cursor)
        assert caught.value.cursor == cursor
        with pytest.raises(InvalidCursorError):
            await backend.dead_letters.list(cursor)


async def test_declared_schedules_gone_from_code_leave_every_shard() -> None:
    """sync_declared places each schedule on its job's shard and removes declared schedules
    no longer in code on every shard; runtime schedules stay."""
    async with opened() as (backend, clock):
        declared = [Schedule(Cron("@hourly"), job=job, id=f"{job}:0") for job in JOBS]
        await backend.schedules.sync_declared(declared, clock.now())
        await backend.schedules.create(
            Schedule(Every(timedelta(minutes=1)), job="gamma", id="mine"), clock.now()
        )
        assert [s.schedule.id for s in await backend.schedules.list()] == [
            "alpha:0",
            "gamma:0",
            "mine",
            "zeta:0",
        ]
        await backend.schedules.sync_declared(declared[:1], clock.now())
        assert [s.schedule.id for s in await backend.schedules.list()] == ["alpha:0", "mine"]
        assert [
            s.schedule.id for s in await backend.shards[shard_of("alpha", 3)].schedules.list()
        ] == ["alpha:0"]


async def test_a_schedule_id_is_unique_across_shards() -> None:
    """Creating an id taken by another job's schedule (on another shard) is refused, and so
    is moving a schedule to a job on another shard."""
    async with opened() as (backend, clock):
        await backend.schedules.create(
            Schedule(Every(timedelta(minutes=1)), job="alpha", id="s"), clock.now()
        )
        with pytest.raises(ScheduleExistsError):
            await backend.schedules.create(
                Schedule(Every(timedelta(minutes=1)), job="gamma", id="s"), clock.now()
            )
        with pytest.raises(InvalidScheduleError, match="another shard"):
            await backend.schedules.update(
                Schedule(Every(timedelta(seconds=30)), job="gamma", id="s"), clock.now()
            )
        assert (await backend.schedules.get("s")).schedule.job == "alpha"


async def test_due_schedules_come_earliest_first_from_every_shard() -> None:
    """due() is the earliest `limit` over the shards; next_due_at is the earliest of all."""
    async with opened() as (backend, clock):
        now = clock.now()
        for offset, job in [(30, "alpha"), (10, "gamma"), (20, "zeta"), (40, "gamma")]:
            schedule = Schedule(
                Every(timedelta(minutes=1)),
                job=job,
                id=f"{job}-{offset}",
                start=now + timedelta(seconds=offset),
            )
            await backend.schedules.create(schedule, now)
        assert await backend.schedules.next_due_at() == now + timedelta(seconds=10)
        due = await backend.schedules.due(now + timedelta(seconds=45), limit=3)
        assert [s.schedule.id for s in due] == ["gamma-10", "zeta-20", "alpha-30"]


async def test_a_wakeup_on_any_shard_wakes_the_merged_signal() -> None:
    """An enqueue on any one shard is heard by the sharded backend's one subscription."""
    async with opened() as (backend, _):
        assert backend.signals is not None
        for job in JOBS:

            async def enqueue(job: str = job) -> None:
                await backend.queue.enqueue([EnqueueRequest(job)])

            await hear(backend.signals.wakeups(), enqueue)


async def test_a_hub_on_shards_runs_every_job() -> None:
    """A Hub on ``memory://?shards=3`` runs the runs of jobs on every shard to success."""
    hub = Hub("memory://?shards=3", clock=FakeClock(START), prefix=fresh_prefix())
    async with hub:
        done: list[str] = []
        for job in JOBS:
            hub.job(job)(lambda ctx: done.append(ctx.run.job))
        await hub.enqueue_many([])  # nothing: a no-op across shards
        for job in JOBS:
            for _ in range(3):
                await hub.enqueue(job)
        finished = await run_until_idle(hub)
        assert sorted(done) == sorted(JOBS * 3)
        assert {r.state for r in finished} == {RunState.SUCCEEDED}


# --- on the real Cluster ---------------------------------------------------------------------

CLUSTER_URL_ENV = "HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL"


@pytest.mark.redis
async def test_three_shards_land_on_three_masters() -> None:
    """On the three-master Cluster, each of 3 shards' hash tags is served by another master
    (CLUSTER KEYSLOT agrees with the slots they were named for)."""
    url = os.environ.get(CLUSTER_URL_ENV)
    if not url:
        pytest.skip(f"{CLUSTER_URL_ENV} is not set")
    async with opened(f"{url}?shards=3") as (backend, _):
        await backend.queue.enqueue([EnqueueRequest(job) for job in JOBS])
        owners = set()
        for shard in backend.shards:
            assert isinstance(shard, RedisBackend)
            client = shard.client
            assert isinstance(client, RedisCluster)
            key = f"{{{shard.config.prefix}}}:history"
            slot = int(await client.execute_command("CLUSTER KEYSLOT", key))
            assert slot == cluster_slot(shard.config.prefix)
            node = client.get_node_from_key(key)
            assert node is not None
            owners.add(node.name)
        assert len(owners) == 3
