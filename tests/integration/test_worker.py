"""The worker end to end on memory://: handlers, concurrency, timeouts, dead letters, stop."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from typing import Any

import attrs
import pytest

from hub_scheduler import RetryPolicy, Run, RunState
from hub_scheduler.domain.errors import PayloadError
from hub_scheduler.domain.model import AttemptOutcome
from hub_scheduler.domain.registry import Job, JobContext
from hub_scheduler.hub import Hub
from hub_scheduler.testing import FakeClock, RecordingNotifier, wait_for_state


async def test_handler_gets_its_run_and_payload() -> None:
    """A handler sees its run id, attempt 1 and payload; the run ends succeeded."""
    async with Hub() as hub:
        seen: asyncio.Queue[JobContext] = asyncio.Queue()

        @hub.job("greet")
        async def greet(ctx: JobContext) -> None:
            await seen.put(ctx)

        run_id = await hub.enqueue("greet", {"name": "Ada"})
        async with hub.worker():
            ctx = await asyncio.wait_for(seen.get(), 5)
        assert (ctx.run_id, ctx.attempt, ctx.payload) == (run_id, 1, {"name": "Ada"})
        assert (await hub.history.get(run_id)).state is RunState.SUCCEEDED


async def test_peak_concurrency_equals_the_limit() -> None:
    """With 12 blocking jobs and concurrency 5, exactly 5 run at once, then all finish."""
    async with Hub() as hub:
        running = 0
        peak = 0
        five_running = asyncio.Event()
        release = asyncio.Event()
        finished = 0
        all_done = asyncio.Event()

        @hub.job("block")
        async def block(ctx: JobContext) -> None:
            nonlocal running, peak, finished
            running += 1
            peak = max(peak, running)
            if running == 5:
                five_running.set()
            await release.wait()
            running -= 1
            finished += 1
            if finished == 12:
                all_done.set()

        await hub.enqueue_many([Job("block") for _ in range(12)])
        async with hub.worker(concurrency=5):
            await asyncio.wait_for(five_running.wait(), 5)
            snapshot = await hub.queue.snapshot()
            release.set()
            await asyncio.wait_for(all_done.wait(), 5)
        assert peak == 5
        assert (snapshot.active, snapshot.waiting) == (5, 7)


async def test_timeout_fails_the_attempt_and_dead_letters_with_alert() -> None:
    """An attempt over its timeout fails (TimeoutError); with no retries it is dead and alerted."""
    notifier = RecordingNotifier()
    async with Hub(notifier=notifier) as hub:

        @hub.job("hang", timeout=timedelta(milliseconds=100), retry=RetryPolicy.none())
        async def hang(ctx: JobContext) -> None:
            await asyncio.Event().wait()

        run_id = await hub.enqueue("hang")
        async with hub.worker(), asyncio.timeout(5):
            dead = await notifier.next_dead()
        assert [run.id for run in notifier.dead] == [run_id]
        assert (dead.id, dead.state) == (run_id, RunState.DEAD)
        assert dead.error is not None
        assert (dead.error.type, dead.error.message) == (
            "TimeoutError",
            "the attempt ran longer than its 0.1 s timeout",
        )
        assert [r.id for r in (await hub.dead_letters.list()).items] == [run_id]


async def test_failures_retry_then_dead_letter() -> None:
    """A job that always fails runs 1 + max_retries times, then lands in the DLQ."""
    notifier = RecordingNotifier()
    async with Hub(notifier=notifier) as hub:
        attempts: list[int] = []

        @hub.job("flaky", retry=RetryPolicy(max_retries=2, base_delay=timedelta(milliseconds=20)))
        async def flaky(ctx: JobContext) -> None:
            attempts.append(ctx.attempt)
            raise RuntimeError(f"attempt {ctx.attempt} failed")

        await hub.enqueue("flaky")
        async with hub.worker(), asyncio.timeout(5):
            await notifier.next_dead()
        assert attempts == [1, 2, 3]
        [dead] = (await hub.dead_letters.list()).items
        assert dead.error is not None
        assert (dead.attempt, dead.error.message) == (3, "attempt 3 failed")


async def test_stop_lets_running_jobs_finish_and_hands_back_the_rest() -> None:
    """On stop, the running job completes; runs not yet started stay queued for others."""
    async with Hub() as hub:
        started = asyncio.Event()
        release = asyncio.Event()

        @hub.job("slow")
        async def slow(ctx: JobContext) -> None:
            started.set()
            await release.wait()

        first = await hub.enqueue("slow")
        worker = hub.worker(concurrency=1)
        async with worker:
            await asyncio.wait_for(started.wait(), 5)
            await hub.enqueue_many([Job("slow") for _ in range(3)])
            worker.stop()
            release.set()
        assert (await hub.history.get(first)).state is RunState.SUCCEEDED
        snapshot = await hub.queue.snapshot()
        assert (snapshot.active, snapshot.waiting) == (0, 3)


async def test_sync_handlers_run_in_a_thread() -> None:
    """A plain (non-async) handler runs and its run succeeds."""
    async with Hub() as hub:
        calls: list[str] = []
        ran = asyncio.Event()
        loop = asyncio.get_running_loop()

        @hub.job("plain")
        def plain(ctx: JobContext) -> None:
            calls.append(ctx.run_id)
            loop.call_soon_threadsafe(ran.set)

        run_id = await hub.enqueue("plain")
        async with hub.worker():
            await asyncio.wait_for(ran.wait(), 5)
        assert calls == [run_id]
        assert (await hub.history.get(run_id)).state is RunState.SUCCEEDED


async def test_pause_holds_while_running_jobs_finish() -> None:
    """Pausing the queue lets the running job finish but starts nothing new until resumed."""
    async with Hub(clock=FakeClock()) as hub:
        started: asyncio.Queue[int] = asyncio.Queue()
        release = asyncio.Event()
        finished: list[int] = []

        @hub.job("step")
        async def step(ctx: JobContext) -> None:
            await started.put(ctx.payload["n"])
            await release.wait()
            finished.append(ctx.payload["n"])

        first = await hub.enqueue("step", {"n": 1})
        async with hub.worker(concurrency=1):
            assert await asyncio.wait_for(started.get(), 5) == 1
            await hub.queue.pause()
            await hub.enqueue_many([Job("step", {"n": 2}), Job("step", {"n": 3})])
            release.set()
            await wait_for_state(hub, first, RunState.SUCCEEDED)  # and the worker claims nothing
            snapshot = await hub.queue.snapshot()
            assert (finished, snapshot.active, snapshot.waiting, started.empty()) == (
                [1],
                0,
                2,
                True,
            )
            await hub.queue.resume()
            assert [await asyncio.wait_for(started.get(), 5) for _ in range(2)] == [2, 3]


async def test_payload_limit_is_configurable_on_the_hub() -> None:
    """A hub built with a small payload limit refuses a larger payload with a clear error."""
    async with Hub(payload_limit=100) as hub:
        hub.job("small")(lambda _: None)
        await hub.enqueue("small", {"note": "x" * 50})
        with pytest.raises(PayloadError, match="the limit is 100"):
            await hub.enqueue("small", {"note": "x" * 200})


async def test_a_stopping_worker_lets_a_slow_dead_letter_alert_finish() -> None:
    """An alert still being sent when the worker is told to stop is delivered, not cut off."""
    entered, release = asyncio.Event(), asyncio.Event()
    told: list[str] = []

    class SlowNotifier:
        async def run_dead(self, run: Run) -> None:
            entered.set()
            await release.wait()
            told.append(run.id)

    async with Hub(notifier=SlowNotifier()) as hub:

        @hub.job("doomed", retry=RetryPolicy.none())
        async def doomed(ctx: JobContext) -> None:
            raise RuntimeError("no")

        run_id = await hub.enqueue("doomed")
        worker = hub.worker()
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(entered.wait(), 5)
        worker.stop()
        # The experiment: give the stopping worker time in which it could cut the alert off.
        await asyncio.wait({running}, timeout=1)
        release.set()
        await asyncio.wait_for(running, 10)
    assert told == [run_id]


async def test_a_job_running_past_the_grace_is_handed_back_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job that outlasts the stop grace is cancelled and its run queued again right after
    stop, with a stall and an interrupted attempt; no traceback is logged, and another
    worker claims it at once."""
    async with Hub() as hub:
        started = asyncio.Event()

        @hub.job("stubborn")
        async def stubborn(ctx: JobContext) -> None:
            started.set()
            await asyncio.sleep(3600)

        run_id = await hub.enqueue("stubborn")
        async with hub.worker(grace=timedelta(milliseconds=50)):
            await asyncio.wait_for(started.wait(), 5)
        run = await hub.history.get(run_id)
        assert (run.state, run.stalls, [a.outcome for a in run.attempts]) == (
            RunState.QUEUED,
            1,
            [AttemptOutcome.INTERRUPTED],
        )
        [claim] = await hub.queue.claim("other", 1, timedelta(seconds=30))
        assert claim.run.id == run_id
    assert [
        r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()
    ] == []
    assert "CancelledError" not in caplog.text


async def test_each_failed_attempt_and_each_finished_run_is_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed attempt logs one WARNING naming the job, run, attempt and when the next one
    is due; the run that then succeeds logs one INFO line with its duration."""
    caplog.set_level(logging.INFO, logger="hub_scheduler.worker")
    notifier = RecordingNotifier()
    async with Hub(notifier=notifier) as hub:
        done = asyncio.Event()

        @hub.job("flaky", retry=RetryPolicy(max_retries=1, base_delay=timedelta(milliseconds=20)))
        async def flaky(ctx: JobContext) -> None:
            if ctx.attempt == 1:
                raise RuntimeError("first try fails")
            done.set()

        run_id = await hub.enqueue("flaky")
        async with hub.worker():
            await asyncio.wait_for(done.wait(), 5)
            await wait_for_state(hub, run_id, RunState.SUCCEEDED)
    lines = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "hub_scheduler.worker" and run_id in r.getMessage()
    ]
    [(level, failed), (info_level, finished)] = lines
    assert (level, info_level) == ("WARNING", "INFO")
    assert re.fullmatch(
        rf"job flaky run {run_id} attempt 1 failed in [0-9.]+ s: RuntimeError: first try fails; "
        r"attempt 2 at \S+ \(in 0\.0[0-9]+ s\)",
        failed,
    ), failed
    assert re.fullmatch(rf"job flaky run {run_id} succeeded in [0-9.]+ s \(attempt 2\)", finished)


async def test_a_template_enqueues_one_run_per_override() -> None:
    """`enqueue_template` merges each override into the template's payload, keeps its
    priority, and refuses a template with an idempotency key (its runs would be one)."""
    async with Hub() as hub:

        @hub.job("sendInvoice")
        async def send(ctx: JobContext) -> None:
            del ctx

        template = Job("sendInvoice", {"currency": "AUD", "id": 0}, priority="high")
        ids = await hub.enqueue_template(template, [{"id": 1}, {"id": 2, "currency": "NZD"}])
        runs = [await hub.history.get(run_id) for run_id in ids]
        assert [(r.payload, r.priority) for r in runs] == [
            ({"currency": "AUD", "id": 1}, 5),
            ({"currency": "NZD", "id": 2}, 5),
        ]
        with pytest.raises(ValueError, match="idempotency_key"):
            await hub.enqueue_template(Job("sendInvoice", idempotency_key="k"), [{}])


@attrs.define
class _RenewalRacesSettling:
    """A queue on which the worker's first settling reaches the store before its next
    renewal, but the renewal's answer comes back first (two connections, either order)."""

    inner: Any
    settled: asyncio.Event = attrs.field(factory=asyncio.Event)
    renewed: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def exchange(self, worker: str, settled: Any, want: int, lease: timedelta) -> Any:
        result = await self.inner.exchange(worker, settled, want, lease)
        if settled and not self.settled.is_set():
            self.settled.set()
            await asyncio.wait_for(self.renewed.wait(), 10)
        return result

    async def renew(self, worker: str, claims: Any, lease: timedelta) -> list[str]:
        if not claims or self.renewed.is_set():
            return list(await self.inner.renew(worker, claims, lease))
        await self.settled.wait()
        try:
            return list(await self.inner.renew(worker, claims, lease))
        finally:
            self.renewed.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_renewal_racing_a_finished_run_is_not_a_lost_lease(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run settled while its lease was being renewed is released, not lost: no warning
    (busy drains used to log "lost the lease" for runs that had simply finished)."""
    async with Hub() as hub:

        @hub.job("quick")
        async def quick(ctx: JobContext) -> None:
            del ctx

        run_id = await hub.enqueue("quick")
        worker = hub.worker(lease=timedelta(seconds=1.5))
        racing = _RenewalRacesSettling(worker.queue)
        worker.queue = racing
        with caplog.at_level(logging.WARNING, logger="hub_scheduler.worker"):
            async with worker:
                await asyncio.wait_for(racing.renewed.wait(), 10)
                await wait_for_state(hub, run_id, RunState.SUCCEEDED)
        assert racing.settled.is_set()
        assert not [r for r in caplog.records if "lost the lease" in r.getMessage()]
