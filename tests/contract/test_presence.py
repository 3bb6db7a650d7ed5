"""Presence on every backend: workers and schedulers are live for the ttl of their last
report, and a stopped worker is gone at once."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler.domain.ports import SchedulerInfo, WorkerInfo
from tests.contract.conftest import Subject

TTL = timedelta(seconds=15)


def _worker(backend: Subject, worker_id: str, active: int = 0) -> WorkerInfo:
    return WorkerInfo(worker_id, "host-1", 4242, 5, active, backend.clock.now())


async def test_a_worker_is_live_until_its_report_expires(backend: Subject) -> None:
    """A worker seen now is listed as reported until its ttl passes, then no more."""
    info = _worker(backend, "w1", active=2)
    await backend.presence.worker_seen(info, TTL)
    now = backend.clock.now()
    assert list(await backend.presence.workers(now + TTL - timedelta(seconds=1))) == [info]
    assert list(await backend.presence.workers(now + TTL + timedelta(seconds=1))) == []


async def test_the_latest_report_counts_and_workers_list_by_id(backend: Subject) -> None:
    """A second report replaces the first; live workers come back ordered by id."""
    presence = backend.presence
    await presence.worker_seen(_worker(backend, "w2"), TTL)
    await presence.worker_seen(_worker(backend, "w1"), TTL)
    backend.clock.advance(10)
    busy = _worker(backend, "w2", active=5)
    await presence.worker_seen(busy, TTL)
    live = await presence.workers(backend.clock.now())
    assert [(w.id, w.active, w.seen_at) for w in live] == [
        ("w1", 0, backend.clock.now() - timedelta(seconds=10)),
        ("w2", 5, backend.clock.now()),
    ]
    backend.clock.advance(10)  # w1's report has expired, w2's has not
    assert [w.id for w in await presence.workers(backend.clock.now())] == ["w2"]


async def test_a_stopped_worker_is_gone_at_once(backend: Subject) -> None:
    """worker_stopped removes a live worker; stopping an unknown one is not an error."""
    presence = backend.presence
    await presence.worker_seen(_worker(backend, "w1"), TTL)
    await presence.worker_seen(_worker(backend, "w2"), TTL)
    await presence.worker_stopped("w1")
    await presence.worker_stopped("never-seen")
    assert [w.id for w in await presence.workers(backend.clock.now())] == ["w2"]


async def test_scheduler_heartbeats_expire(backend: Subject) -> None:
    """A scheduler's report shows it live, with its lateness, until its ttl passes."""
    now = backend.clock.now()
    info = SchedulerInfo("s1", now, timedelta(milliseconds=3), timedelta(milliseconds=20))
    await backend.presence.scheduler_seen(info, TTL)
    assert list(await backend.presence.schedulers(now + timedelta(seconds=14))) == [info]
    assert list(await backend.presence.schedulers(now + timedelta(seconds=16))) == []


async def test_presence_is_per_namespace(backend: Subject) -> None:
    """Workers of another hub on the same store are not listed."""
    async with backend.neighbour() as other:
        await other.presence.worker_seen(_worker(other, "elsewhere"), TTL)
        await backend.presence.worker_seen(_worker(backend, "here"), TTL)
        assert [w.id for w in await backend.presence.workers(backend.clock.now())] == ["here"]
