"""hub_scheduler.testing without a worker: the recording doubles, hub_for_tests and
assert_enqueued. (The helpers that drive a worker: tests/integration/test_testing.py.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import Hub, Job, JobContext, Run, RunState
from hub_scheduler.adapters.clock import SystemClock
from hub_scheduler.domain.errors import InvalidCursorError
from hub_scheduler.domain.ports import AuditEntry
from hub_scheduler.testing import (
    DEFAULT_START,
    FakeAuditLog,
    FakeClock,
    FakeNotifier,
    RecordingAuditLog,
    RecordingNotifier,
    assert_enqueued,
    clock_of,
    hub_for_tests,
    notifier_of,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _dead(run_id: str) -> Run:
    return Run(id=run_id, job="a", state=RunState.DEAD, enqueued_at=T0)


def _entry(n: int) -> AuditEntry:
    return AuditEntry(str(n), T0, "alice", (), "job.trigger", "a", "ok")


async def _noop(ctx: JobContext) -> None:
    del ctx


def test_old_names_are_the_recording_doubles() -> None:
    """FakeNotifier and FakeAuditLog still import, as the recording doubles."""
    assert (FakeNotifier, FakeAuditLog) == (RecordingNotifier, RecordingAuditLog)


async def test_next_dead_returns_each_report_once_in_order() -> None:
    """A run reported before the wait is returned at once; a later one wakes the waiter."""
    notifier = RecordingNotifier()
    await notifier.run_dead(_dead("r1"))
    assert (await notifier.next_dead()).id == "r1"
    waiting = asyncio.create_task(notifier.next_dead())
    await asyncio.sleep(0)  # let the waiter start waiting: what is under test is the wake-up
    assert not waiting.done()
    await notifier.run_dead(_dead("r2"))
    async with asyncio.timeout(1):
        assert (await waiting).id == "r2"
    assert [run.id for run in notifier.dead] == ["r1", "r2"]


async def test_wait_until_checks_after_every_report() -> None:
    """wait_until returns as soon as the condition over the recorded runs holds."""
    notifier = RecordingNotifier()
    waiting = asyncio.create_task(notifier.wait_until(lambda runs: len(runs) == 2))
    await notifier.run_dead(_dead("r1"))
    await asyncio.sleep(0)
    assert not waiting.done()
    await notifier.run_dead(_dead("r2"))
    async with asyncio.timeout(1):
        await waiting


async def test_recording_audit_log_pages_newest_first() -> None:
    """Entries list newest first, page by page; a cursor it never gave out is refused."""
    audit = RecordingAuditLog()
    for n in range(5):
        await audit.record(_entry(n))
    first = await audit.list(limit=3)
    second = await audit.list(first.next_cursor, limit=3)
    assert ([e.id for e in first.items], first.next_cursor) == (["4", "3", "2"], "3")
    assert ([e.id for e in second.items], second.next_cursor) == (["1", "0"], None)
    with pytest.raises(InvalidCursorError):
        await audit.list("e:1")


async def test_hub_for_tests_shares_the_jobs_not_the_store() -> None:
    """The test hub has the app's registry, prefix, retention and payload limit, on its own
    memory store, a new fake clock and a recording notifier; the app's Redis is never used."""
    app = Hub("redis://:s3cret@127.0.0.1:1/0", prefix="shop", retention=timedelta(days=7),
              payload_limit=1000)  # fmt: skip
    app.job("first")(_noop)
    hub = hub_for_tests(app)
    app.job("later")(_noop)  # registered after: shared, not copied
    assert hub.registry is app.registry
    assert sorted(job.definition.name for job in hub.registry) == ["first", "later"]
    assert (hub.url, hub.prefix, hub.backend.config.retention) == ("memory://", "shop",
                                                                   timedelta(days=7))  # fmt: skip
    assert hub.backend.config.payload_limit == 1000
    assert clock_of(hub).now() == DEFAULT_START
    assert notifier_of(hub).dead == []
    run_id = await hub.enqueue("later")
    assert (await hub.history.get(run_id)).state is RunState.QUEUED
    assert hub.admin.registry is app.registry


def test_hub_for_tests_runs_on_the_clock_given() -> None:
    """A clock passed in is the test hub's clock (and its backend's)."""
    clock = FakeClock(T0)
    hub = hub_for_tests(Hub(), clock=clock)
    assert (hub.clock, hub.backend.config.clock) == (clock, clock)


def test_accessors_name_what_the_hub_has_instead() -> None:
    """clock_of and notifier_of refuse a hub without the test doubles, naming what it has."""
    hub = Hub(clock=SystemClock())
    with pytest.raises(TypeError, match="runs on SystemClock, not a FakeClock"):
        clock_of(hub)
    with pytest.raises(TypeError, match="notifies through LoggingNotifier"):
        notifier_of(hub)


async def test_assert_enqueued_finds_runs_by_job_and_payload() -> None:
    """Runs of the job with that payload are returned oldest first; a count is checked."""
    hub = hub_for_tests(Hub())
    hub.job("email")(_noop)
    hub.job("sms")(_noop)
    first = await hub.enqueue("email", {"to": "ada"})
    await hub.enqueue("sms", {"to": "ada"})
    clock_of(hub).advance(1)
    second = await hub.enqueue("email", {"to": "ada"})
    assert [r.id for r in await assert_enqueued(hub, "email", {"to": "ada"})] == [first, second]
    assert [r.id for r in await assert_enqueued(hub, "email", count=2)] == [first, second]
    assert len(await assert_enqueued(hub, "sms")) == 1


async def test_assert_enqueued_lists_what_was_enqueued() -> None:
    """No match is an AssertionError that lists every run enqueued, newest first."""
    hub = hub_for_tests(Hub())
    hub.job("email")(_noop)
    run_id = await hub.enqueue("email", {"to": "ada"})
    with pytest.raises(AssertionError) as caught:
        await assert_enqueued(hub, "email", {"to": "bob"})
    assert str(caught.value) == (
        "no run of 'email' with payload {'to': 'bob'} enqueued; enqueued (newest first):\n"
        f"  email {{'to': 'ada'}} (queued, run {run_id})"
    )
    with pytest.raises(AssertionError, match=r"^1 runs, not 2, of 'email' enqueued"):
        await assert_enqueued(hub, "email", count=2)
    with pytest.raises(AssertionError) as nothing:
        await assert_enqueued(hub_for_tests(Hub()), "email")
    assert str(nothing.value) == "no run of 'email' enqueued; enqueued (newest first):\n  nothing"


async def test_a_long_listing_is_cut_after_twenty_runs() -> None:
    """The runs listed in an assertion message stop at 20, saying how many more there are."""
    hub = hub_for_tests(Hub())
    hub.job("email")(_noop)
    await hub.enqueue_many([Job("email", {"i": i}) for i in range(23)])
    with pytest.raises(AssertionError) as caught:
        await assert_enqueued(hub, "sms")
    lines = str(caught.value).splitlines()
    assert (len(lines), lines[-1]) == (22, "  ... and 3 more")
