"""The Redis read indexes of schedules (id order, schedules by job): a store written before
they existed, or changed by an older version meanwhile, reads right, and keeps them after."""

from __future__ import annotations

import pytest

from hub_scheduler import Cron, Schedule
from hub_scheduler.adapters.redis.backend import RedisBackend
from tests.integration.conftest import ADAPTER_START

START = ADAPTER_START


@pytest.fixture
def backend(redis_adapter: RedisBackend) -> RedisBackend:
    """The Redis adapter on fakeredis and on a real Redis (see the package's conftest)."""
    return redis_adapter


async def _ids(backend: RedisBackend, job: str) -> list[str]:
    return [s.schedule.id for s in (await backend.schedules.of_jobs([job]))[job]]


async def test_schedules_stored_without_the_indexes_are_paged_and_grouped(
    backend: RedisBackend,
) -> None:
    """Indexes missing (a store of an earlier version) are rebuilt by the first read."""
    for n in range(5):
        await backend.schedules.create(
            Schedule(Cron("0 * * * *"), job=f"job{n % 2}", id=f"s{n}"), START
        )
    keys = backend.store.keys
    await backend.store.client.delete(keys.schedule_order, keys.schedule_jobs)
    page = await backend.schedules.list_after(None, 3)
    assert ([s.schedule.id for s in page.items], page.next_cursor) == (["s0", "s1", "s2"], "s2")
    assert await _ids(backend, "job1") == ["s1", "s3"]
    assert await backend.store.client.zcard(keys.schedule_jobs) == 5


async def test_a_schedule_written_by_an_older_version_is_found(backend: RedisBackend) -> None:
    """A schedule added or removed without the indexes (an older process still running) is
    seen at the next read: the indexes are rebuilt when their size is off."""
    for schedule_id in ("a", "b"):
        await backend.schedules.create(Schedule(Cron("@daily"), job="j", id=schedule_id), START)
    assert await _ids(backend, "j") == ["a", "b"]
    keys = backend.store.keys
    # What an older version's create leaves: the schedule without its index entries.
    await backend.schedules.create(Schedule(Cron("@daily"), job="j", id="c"), START)
    await backend.store.client.zrem(keys.schedule_order, "c")
    await backend.store.client.zrem(keys.schedule_jobs, "j c")
    assert await _ids(backend, "j") == ["a", "b", "c"]
    await backend.store.client.srem(keys.schedule_ids, "a")  # an older version's delete
    await backend.store.client.delete(keys.schedule("a"), keys.schedule_state("a"))
    page = await backend.schedules.list_after(None, 10)
    assert [s.schedule.id for s in page.items] == ["b", "c"]
