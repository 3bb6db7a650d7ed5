"""A Hub on postgresql:// end to end, on the real clock: workers, retries, dead letters,
schedules, stats, presence, and the wake-up channel."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import attrs
import pytest

from hub_scheduler import Every, Hub, RetryPolicy, Run, RunState, SlotOutcome
from hub_scheduler.adapters.postgres import PostgresBackend, migrate
from hub_scheduler.domain.registry import Job, JobContext
from hub_scheduler.testing import FakeNotifier

pytestmark = pytest.mark.postgres


@attrs.define
class AwaitableNotifier(FakeNotifier):
    """A FakeNotifier a test can await."""

    alerted: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def run_dead(self, run: Run) -> None:
        await super().run_dead(run)
        self.alerted.set()


@pytest.fixture
async def url(pg_url: str, pg_prefix: str) -> str:
    """The database, with the test's schema migrated."""
    await migrate(pg_url, pg_prefix)
    return pg_url


async def test_worker_runs_jobs_and_counts_them(url: str, pg_prefix: str) -> None:
    """Twenty runs enqueued in one batch all succeed; stats and presence see the worker."""
    async with Hub(url, prefix=pg_prefix) as hub:
        done: set[str] = set()
        all_done = asyncio.Event()

        @hub.job("greet")
        async def greet(ctx: JobContext) -> None:
            done.add(ctx.run_id)
            if len(done) == 20:
                all_done.set()

        run_ids = await hub.enqueue_many([Job("greet", {"i": i}) for i in range(20)])
        async with hub.worker(concurrency=5) as worker:
            await asyncio.wait_for(all_done.wait(), 20)
            live = [w.id for w in await hub.presence.workers(hub.clock.now())]
        assert done == set(run_ids)
        assert live == [worker.id]
        states = {(await hub.history.get(run_id)).state for run_id in run_ids}
        assert states == {RunState.SUCCEEDED}
        day = (await hub.stats.job("greet", hub.clock.now(), windows=("24h",))).windows["24h"]
        assert (day.succeeded, day.failed, day.dead) == (20, 0, 0)
        assert list(await hub.presence.workers(hub.clock.now())) == []


async def test_failures_retry_then_dead_letter_with_alert(url: str, pg_prefix: str) -> None:
    """A job that always fails runs 1 + max_retries times, then lands in the DLQ, alerted."""
    notifier = AwaitableNotifier()
    async with Hub(url, prefix=pg_prefix, notifier=notifier) as hub:
        attempts: list[int] = []

        @hub.job("flaky", retry=RetryPolicy(max_retries=2, base_delay=timedelta(milliseconds=20)))
        async def flaky(ctx: JobContext) -> None:
            attempts.append(ctx.attempt)
            raise RuntimeError(f"attempt {ctx.attempt} failed")

        run_id = await hub.enqueue("flaky")
        async with hub.worker():
            await asyncio.wait_for(notifier.alerted.wait(), 20)
        assert attempts == [1, 2, 3]
        [dead] = (await hub.dead_letters.list()).items
        assert dead.error is not None
        assert (dead.id, dead.attempt, dead.error.message) == (run_id, 3, "attempt 3 failed")
        assert [r.id for r in notifier.dead] == [run_id]


async def test_scheduling_fires_slots_the_worker_runs(url: str, pg_prefix: str) -> None:
    """A 1 s schedule fires; the worker runs what it enqueued; the ledger records each slot."""
    async with Hub(url, prefix=pg_prefix) as hub:
        ran: asyncio.Queue[JobContext] = asyncio.Queue()

        @hub.job("tick", schedules=[Every(timedelta(seconds=1))])
        async def tick(ctx: JobContext) -> None:
            await ran.put(ctx)

        async with hub.scheduling(), hub.worker():
            contexts = [await asyncio.wait_for(ran.get(), 10) for _ in range(2)]
        ledger = {r.run_id: r for r in (await hub.schedules.slots("tick:0")).items}
        for ctx in contexts:
            record = ledger[ctx.run_id]
            assert (record.outcome, record.slot) == (SlotOutcome.ENQUEUED, ctx.slot)


async def test_an_enqueue_wakes_a_subscriber_once_per_burst(url: str, pg_prefix: str) -> None:
    """A quiet subscription yields False; an enqueue wakes it at once; a burst of enqueues
    within the debounce window sends one more wake-up, then the channel is quiet again."""
    async with Hub(url, prefix=pg_prefix) as hub:

        @hub.job("job")
        async def job(ctx: JobContext) -> None:
            del ctx

        backend = hub.backend
        assert isinstance(backend, PostgresBackend)
        backend.store.wakes.window = 2.0
        wakeups = backend.signals.wakeups()
        assert await anext(wakeups) is False  # subscribed, nothing happened for a while
        await hub.enqueue("job")
        assert await anext(wakeups) is True  # the first one notifies at once
        for _ in range(3):
            await hub.enqueue("job")  # within the window: folded into one trailing wake-up
        assert [await anext(wakeups), await anext(wakeups)] == [True, False]
        await wakeups.aclose()  # type: ignore[attr-defined]


async def test_a_schedule_change_is_signalled(url: str, pg_prefix: str) -> None:
    """Pausing a schedule reaches a schedule-change subscriber."""
    async with Hub(url, prefix=pg_prefix) as hub:

        @hub.job("tick", schedules=[Every(timedelta(hours=1))])
        async def tick(ctx: JobContext) -> None:
            del ctx

        await hub.sync_schedules()
        backend = hub.backend
        assert isinstance(backend, PostgresBackend)
        changes = backend.signals.schedule_changes()
        assert await anext(changes) is False
        await hub.schedules.set_paused("tick:0", paused=True)
        assert await anext(changes) is True
        await changes.aclose()  # type: ignore[attr-defined]
