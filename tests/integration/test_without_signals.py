"""A backend without `Signals` still works: the engines fall back to polling on their clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import attrs

from hub_scheduler import Every, Hub, RunState, Schedule
from hub_scheduler.adapters.backends import open_backend
from hub_scheduler.domain.ports import (
    AuditLog,
    Backend,
    BackendConfig,
    DeadLetters,
    JobQueue,
    Presence,
    ResultStore,
    RunHistory,
    ScheduleStore,
    SharedStore,
    Signals,
    Stats,
    Workflows,
)
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.testing import FakeClock


@attrs.frozen
class Deaf:
    """Another backend's ports, minus its signals (as a store without pub/sub would be)."""

    inner: Backend

    @property
    def url(self) -> str:
        """The inner backend's URL."""
        return self.inner.url

    @property
    def config(self) -> BackendConfig:
        """The inner backend's configuration."""
        return self.inner.config

    @property
    def queue(self) -> JobQueue:
        """The inner queue."""
        return self.inner.queue

    @property
    def dead_letters(self) -> DeadLetters:
        """The inner dead letters."""
        return self.inner.dead_letters

    @property
    def history(self) -> RunHistory:
        """The inner history."""
        return self.inner.history

    @property
    def schedules(self) -> ScheduleStore:
        """The inner schedules."""
        return self.inner.schedules

    @property
    def stats(self) -> Stats:
        """The inner statistics."""
        return self.inner.stats

    @property
    def audit(self) -> AuditLog:
        """The inner audit log."""
        return self.inner.audit

    @property
    def presence(self) -> Presence:
        """The inner presence."""
        return self.inner.presence

    @property
    def results(self) -> ResultStore:
        """The inner results."""
        return self.inner.results

    @property
    def signals(self) -> Signals | None:
        """None: nobody is woken."""
        return None

    @property
    def shared(self) -> SharedStore | None:
        """The inner shared store."""
        return self.inner.shared

    @property
    def workflows(self) -> Workflows:
        """The inner workflows."""
        return self.inner.workflows

    async def ping(self) -> None:
        """Ping the inner backend."""
        await self.inner.ping()

    async def aclose(self) -> None:
        """Close the inner backend."""
        await self.inner.aclose()


def _deaf_hub(clock: FakeClock) -> Hub:
    return Hub(Deaf(open_backend("memory://", BackendConfig(clock))))


async def test_an_idle_worker_finds_work_at_its_next_poll() -> None:
    """With no wake-ups, a run enqueued while the worker idles starts once a poll passes."""
    clock = FakeClock()
    async with _deaf_hub(clock) as hub:
        ran = asyncio.Event()

        @hub.job("late")
        async def late(ctx: JobContext) -> None:
            ran.set()

        async with hub.worker(poll=timedelta(seconds=1)):
            async with asyncio.timeout(5):
                await clock.until_sleeping(4)  # pump, renew, reap, heartbeat all idle
            run_id = await hub.enqueue("late")
            clock.advance(timedelta(seconds=1))
            await asyncio.wait_for(ran.wait(), 5)
        assert (await hub.history.get(run_id)).state is RunState.SUCCEEDED


async def test_a_scheduler_sees_a_new_schedule_at_its_next_look() -> None:
    """With no change signals, a schedule created at runtime fires when the loop looks again
    (at most a heartbeat period later), not when it is due."""
    clock = FakeClock()
    async with _deaf_hub(clock) as hub:
        hub.job("tick")(lambda _: None)
        async with hub.scheduling(heartbeat_every=timedelta(seconds=5)):
            async with asyncio.timeout(5):
                await clock.until_sleeping(1)  # the loop sleeps 5 s: nothing is scheduled
            every = Schedule(Every(timedelta(seconds=1)), job="tick", id="t")
            state = await hub.schedules.create(every, clock.now())
            assert state.next_fire == clock.now() + timedelta(seconds=1)
            clock.advance(timedelta(seconds=1))  # due now, but nobody told the scheduler
            clock.advance(timedelta(seconds=4))  # the loop wakes on its own
            async with asyncio.timeout(5):
                await clock.until_sleeping(1)  # it fired, then went back to sleep
        assert (await hub.schedules.get("t")).runs == 5
