"""The batch reads the admin pages are built on, on every backend: many jobs' statistics,
last runs, schedules and pause flags in one call, and schedules paged in id order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler import Cron, Every, Schedule
from hub_scheduler.adapters.sharded import shard_of
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp
from tests.contract.conftest import SHARDS, Subject

LEASE = timedelta(seconds=30)


async def _create(backend: Subject, job: str, *ids: str) -> None:
    now = backend.clock.now()
    for schedule_id in ids:
        await backend.schedules.create(Schedule(Cron("0 * * * *"), job=job, id=schedule_id), now)


async def test_schedules_page_in_id_order_each_once(backend: Subject) -> None:
    """Following the cursor lists every schedule once, in id order, whatever the page size."""
    ids = [f"s{n:02d}" for n in range(11)]
    for n, schedule_id in enumerate(reversed(ids)):
        await _create(backend, f"job{n % 4}", schedule_id)
    for limit in (1, 3, 11, 50):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await backend.schedules.list_after(cursor, limit)
            seen += [s.schedule.id for s in page.items]
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ids, limit
        assert pages <= len(ids) // limit + 1, limit
    whole = await backend.schedules.list_after(None, 100)
    assert list(whole.items) == list(await backend.schedules.list())


async def test_a_schedules_page_reads_on_after_changes(backend: Subject) -> None:
    """A cursor stays good when its schedule is deleted; schedules created after it show up."""
    await _create(backend, "a", "s1", "s2", "s3")
    first = await backend.schedules.list_after(None, 2)
    assert ([s.schedule.id for s in first.items], first.next_cursor) == (["s1", "s2"], "s2")
    await backend.schedules.delete("s2")
    await _create(backend, "b", "s25", "s0")
    rest = await backend.schedules.list_after(first.next_cursor, 2)
    assert ([s.schedule.id for s in rest.items], rest.next_cursor) == (["s25", "s3"], None)
    empty = await backend.schedules.list_after("zzz", 2)
    assert (empty.items, empty.next_cursor) == ((), None)
    with pytest.raises(ValueError, match="limit"):
        await backend.schedules.list_after(None, 0)


async def test_schedules_of_many_jobs_in_one_call(backend: Subject) -> None:
    """Each job asked gets its schedules in id order; a job with none gets none."""
    backend.declare("report", [Cron("0 8 * * *"), Every(timedelta(hours=1))])
    await backend.sync()
    await _create(backend, "adhoc", "b", "a")
    await _create(backend, "other", "c")
    found = await backend.schedules.of_jobs(["adhoc", "report", "idle"])
    assert {job: [s.schedule.id for s in states] for job, states in found.items()} == {
        "adhoc": ["a", "b"],
        "report": ["report:0", "report:1"],
        "idle": [],
    }
    assert found["report"][0] == await backend.schedules.get("report:0")
    await backend.schedules.delete("a")
    await backend.schedules.set_paused("b", paused=True)
    again = await backend.schedules.of_jobs(["adhoc"])
    assert [(s.schedule.id, s.paused) for s in again["adhoc"]] == [("b", True)]
    assert await backend.schedules.of_jobs([]) == {}


async def test_a_schedule_moved_to_another_job_is_listed_under_it(backend: Subject) -> None:
    """After an update changes a schedule's job, it belongs to the new job only."""
    first = "mover"
    second = next(f"dest{n}" for n in range(100) if shard_of(f"dest{n}", SHARDS) == shard_of(
        first, SHARDS))  # fmt: skip
    await _create(backend, first, "m")
    await backend.schedules.update(
        Schedule(Cron("0 * * * *"), job=second, id="m"), backend.clock.now()
    )
    found = await backend.schedules.of_jobs([first, second])
    assert {job: [s.schedule.id for s in states] for job, states in found.items()} == {
        first: [],
        second: ["m"],
    }


async def test_latest_run_of_many_jobs(backend: Subject) -> None:
    """Each job's newest run (by enqueue time) comes back; a job with no run is absent."""
    await backend.queue.enqueue([EnqueueRequest("report"), EnqueueRequest("mail")])
    backend.clock.advance(1)
    [newest] = await backend.queue.enqueue([EnqueueRequest("report")])
    latest = await backend.history.latest(["report", "mail", "never"])
    assert sorted(latest) == ["mail", "report"]
    assert latest["report"] == await backend.history.get(newest.run_id)
    [mail] = (await backend.history.list(job="mail")).items
    assert latest["mail"] == mail
    assert await backend.history.latest([]) == {}


async def test_paused_among_many_jobs(backend: Subject) -> None:
    """Only the jobs paused one by one are named; a queue pause is not a job's."""
    await backend.queue.pause("report")
    await backend.queue.pause("mail")
    await backend.queue.pause()
    await backend.queue.resume("mail")
    assert await backend.queue.paused_among(["report", "mail", "idle"]) == {"report"}
    assert await backend.queue.paused_among([]) == frozenset()


async def test_statistics_of_many_jobs_match_one_by_one(backend: Subject) -> None:
    """`Stats.jobs` answers in order what `Stats.job` answers for each, for any windows."""
    jobs = [f"job{n}" for n in range(7)]
    await backend.queue.enqueue([EnqueueRequest(job) for job in jobs[:5] for _ in range(2)])
    claims = await backend.queue.claim("w1", 10, LEASE)
    backend.clock.advance(0.25)
    error = ErrorInfo("ValueError", "x")
    for n, claim in enumerate(claims):
        await backend.queue.finish(claim, Succeeded() if n % 3 else Failed(error, GiveUp(1)))
    backend.clock.advance(timedelta(days=5, hours=7))  # runs on other days and hours too
    await backend.queue.enqueue([EnqueueRequest(job) for job in jobs[1:3]])
    for claim in await backend.queue.claim("w1", 2, LEASE):
        await backend.queue.finish(claim, Succeeded())
    backend.clock.advance(timedelta(hours=30))
    now = backend.clock.now()
    for windows, trend in ((("1h", "24h", "7d", "90d"), 24), (("24h",), 24),
                           (("1h", "24h", "7d", "90d"), 168)):  # fmt: skip
        many = await backend.stats.jobs(list(reversed(jobs)), now, windows, trend_hours=trend)
        one_by_one = [
            await backend.stats.job(job, now, windows, trend_hours=trend) for job in reversed(jobs)
        ]
        assert many == one_by_one, windows
    assert sum(s.totals.finished for s in many) == 12
    assert sum(s.windows["7d"].finished for s in many) == 12  # two days, six apart
    with pytest.raises(ValueError, match="unknown windows"):
        await backend.stats.jobs(jobs, now, windows=("2h",))
    assert await backend.stats.jobs([], now) == []
