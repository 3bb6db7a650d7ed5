"""The helpers of hub_scheduler.testing that drive the real worker and scheduler on a fake
clock: run_until_idle, advance_to_next_fire and wait_for_state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import Cron, Every, Hub, JobContext, RetryPolicy, RunState, Schedule
from hub_scheduler.runtime.worker import WorkerSettings
from hub_scheduler.testing import (
    FakeClock,
    advance_to_next_fire,
    hub_for_tests,
    notifier_of,
    run_until_idle,
    wait_for_state,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)


async def _noop(ctx: JobContext) -> None:
    del ctx


def _app() -> tuple[Hub, FakeClock, list[tuple[int, datetime]]]:
    """A test hub whose 'flaky' job fails twice then succeeds, recording (attempt, time)."""
    app = Hub()
    clock = FakeClock(T0)
    hub = hub_for_tests(app, clock=clock)
    attempts: list[tuple[int, datetime]] = []

    @app.job("flaky", retry=RetryPolicy(max_retries=5, base_delay=timedelta(minutes=1)))
    async def flaky(ctx: JobContext) -> None:
        attempts.append((ctx.attempt, clock.now()))
        if ctx.attempt < 3:
            raise RuntimeError(f"attempt {ctx.attempt}")

    app.job("noop")(_noop)
    return hub, clock, attempts


async def test_run_until_idle_jumps_over_retry_backoffs() -> None:
    """Attempts 2 and 3 run exactly 1 and 2 minutes after the failures before them; the
    finished run is returned and the clock stops at the last attempt."""
    hub, clock, attempts = _app()
    run_id = await hub.enqueue("flaky")
    [run] = await run_until_idle(hub)
    assert (run.id, run.state, run.attempt) == (run_id, RunState.SUCCEEDED, 3)
    assert attempts == [
        (1, T0),
        (2, T0 + timedelta(minutes=1)),
        (3, T0 + timedelta(minutes=3)),
    ]
    assert clock.now() == T0 + timedelta(minutes=3)


async def test_run_until_idle_dead_letters_and_reports_them() -> None:
    """A job out of retries ends dead; the recording notifier has it when the call returns."""
    app = Hub()

    @app.job("doomed", retry=RetryPolicy(max_retries=3))
    async def doomed(ctx: JobContext) -> None:
        raise ConnectionError("down")

    hub = hub_for_tests(app, clock=FakeClock(T0))
    run_id = await hub.enqueue("doomed")
    [dead] = await run_until_idle(hub)
    assert (dead.id, dead.state, dead.attempt) == (run_id, RunState.DEAD, 4)
    assert hub.clock.now() == T0 + timedelta(seconds=2 + 4 + 8)
    assert [run.id for run in notifier_of(hub).dead] == [run_id]
    assert [run.id for run in (await hub.dead_letters.list()).items] == [run_id]


async def test_run_until_idle_returns_runs_in_the_order_they_finished() -> None:
    """Delayed runs run at their time; follow-ups a handler enqueues run too; all returned."""
    hub, _, _ = _app()

    @hub.job("chain")
    async def chain(ctx: JobContext) -> None:
        await hub.enqueue("noop", {"after": ctx.run_id}, delay=timedelta(hours=1))

    later = await hub.enqueue("noop", {"n": 2}, delay=timedelta(minutes=30))
    first = await hub.enqueue("chain")
    runs = await run_until_idle(hub)
    assert [(r.job, r.finished_at) for r in runs] == [
        ("chain", T0),
        ("noop", T0 + timedelta(minutes=30)),
        ("noop", T0 + timedelta(hours=1)),
    ]
    assert (runs[1].id, runs[2].payload) == (later, {"after": first})
    assert await run_until_idle(hub) == []


async def test_run_until_idle_never_moves_the_clock_past_until() -> None:
    """With `until`, runs due later stay delayed and the clock stays at or before it."""
    hub, clock, _ = _app()
    soon = await hub.enqueue("noop", delay=timedelta(minutes=5))
    late = await hub.enqueue("noop", delay=timedelta(hours=2))
    runs = await run_until_idle(hub, until=T0 + timedelta(hours=1))
    assert [r.id for r in runs] == [soon]
    assert clock.now() == T0 + timedelta(minutes=5)
    assert (await hub.history.get(late)).state is RunState.DELAYED


async def test_paused_queue_leaves_runs_waiting() -> None:
    """Runs of a paused queue do not keep run_until_idle busy; after resume they run."""
    hub, _, _ = _app()
    await hub.queue.pause()
    run_id = await hub.enqueue("noop")
    assert await run_until_idle(hub) == []
    assert (await hub.history.get(run_id)).state is RunState.QUEUED
    await hub.queue.resume()
    assert [r.id for r in await run_until_idle(hub)] == [run_id]


async def test_run_until_idle_is_deterministic() -> None:
    """The same scenario twice gives the same attempts at the same fake instants."""
    outcomes = []
    for _ in range(2):
        hub, _, attempts = _app()
        await hub.enqueue("flaky")
        await hub.enqueue("noop", delay=timedelta(seconds=90))
        runs = await run_until_idle(hub)
        outcomes.append((attempts, [(r.job, r.state, r.finished_at) for r in runs]))
    assert outcomes[0] == outcomes[1]


async def test_a_handler_that_never_returns_times_out_with_what_waits() -> None:
    """A stuck handler makes run_until_idle raise TimeoutError naming the run not finished
    (queued again: the stopping worker handed it back)."""
    hub, _, _ = _app()

    @hub.job("stuck")
    async def stuck(ctx: JobContext) -> None:
        await asyncio.Event().wait()

    run_id = await hub.enqueue("stuck", {"n": 1})
    with pytest.raises(TimeoutError) as caught:
        await run_until_idle(hub, timeout=0.2, settings=WorkerSettings(grace=timedelta(0)))
    assert str(caught.value) == (
        "run_until_idle: still busy after 0.2 s (clock at 2026-06-01T00:00:00+00:00); "
        f"runs not finished:\n  stuck {{'n': 1}} (queued, run {run_id})"
    )


async def test_run_until_idle_needs_a_fake_clock() -> None:
    """A hub on the system clock is refused before any worker starts."""
    with pytest.raises(TypeError, match="not a FakeClock"):
        await run_until_idle(Hub())


async def test_advance_to_next_fire_fires_the_sydney_slot() -> None:
    """02:00 in Sydney on 1 June is 16:00 UTC: the clock moves there and one run is enqueued
    for that slot; the next call moves a day on."""
    app = Hub()
    app.job("report", schedules=[Cron("0 2 * * *", "Australia/Sydney")])(_noop)
    hub = hub_for_tests(app, clock=FakeClock(T0))
    [run_id] = await advance_to_next_fire(hub)
    run = await hub.history.get(run_id)
    slot = datetime(2026, 6, 1, 16, tzinfo=UTC)
    assert (hub.clock.now(), run.schedule_id, run.slot, run.state) == (
        slot,
        "report:0",
        slot,
        RunState.QUEUED,
    )
    [following] = await advance_to_next_fire(hub)
    assert (await hub.history.get(following)).slot == slot + timedelta(days=1)


async def test_every_schedule_due_at_the_instant_fires() -> None:
    """Two schedules sharing a slot both fire; their run ids come back by schedule id."""
    app = Hub()
    app.job("a", schedules=[Every(timedelta(minutes=10))])(_noop)
    app.job("b", schedules=[Cron("*/5 * * * *")])(_noop)
    hub = hub_for_tests(app, clock=FakeClock(T0))
    [five] = await advance_to_next_fire(hub)
    assert (await hub.history.get(five)).job == "b"
    both = await advance_to_next_fire(hub)
    assert [(await hub.history.get(r)).job for r in both] == ["a", "b"]
    assert hub.clock.now() == T0 + timedelta(minutes=10)


async def test_a_paused_schedule_fires_nothing() -> None:
    """A paused schedule's slot passes (ledgered paused) without a run."""
    app = Hub()
    app.job("report", schedules=[Schedule(Cron("0 8 * * *"), id="daily")])(_noop)
    hub = hub_for_tests(app, clock=FakeClock(T0))
    await hub.sync_schedules()
    await hub.schedules.set_paused("daily", paused=True)
    assert await advance_to_next_fire(hub) == []
    assert hub.clock.now() == T0 + timedelta(hours=8)


async def test_no_schedule_to_fire_is_an_assertion_error() -> None:
    """Without any schedule (or with sync=False before any sync) nothing can fire."""
    app = Hub()
    app.job("report", schedules=[Cron("0 8 * * *")])(_noop)
    hub = hub_for_tests(app)
    with pytest.raises(AssertionError, match=r"no schedule will fire \(stored: none;"):
        await advance_to_next_fire(hub, sync=False)
    assert len(await advance_to_next_fire(hub)) == 1


async def test_wait_for_state_follows_a_running_worker() -> None:
    """With a worker running, wait_for_state returns the run once it has succeeded."""
    hub, _, _ = _app()
    run_id = await hub.enqueue("noop")
    async with hub.worker():
        run = await wait_for_state(hub, run_id, RunState.SUCCEEDED)
    assert (run.id, run.state) == (run_id, RunState.SUCCEEDED)


async def test_wait_for_state_gives_up_on_a_run_that_ended_otherwise() -> None:
    """Waiting for success of a run that ended dead fails at once, saying how it ended."""
    app = Hub()

    @app.job("doomed", retry=RetryPolicy.none())
    async def doomed(ctx: JobContext) -> None:
        raise ValueError("no")

    hub = hub_for_tests(app)
    run_id = await hub.enqueue("doomed")
    await run_until_idle(hub)
    with pytest.raises(AssertionError, match=f"run {run_id} of 'doomed' ended dead, so it"):
        await wait_for_state(hub, run_id, RunState.SUCCEEDED)


async def test_wait_for_state_says_a_retry_waits_on_the_fake_clock() -> None:
    """A run waiting for its retry on a clock nobody moves times out, naming its due time."""
    hub, _, _ = _app()
    run_id = await hub.enqueue("flaky")
    async with hub.worker():
        await wait_for_state(hub, run_id, RunState.RETRY_SCHEDULED)
        with pytest.raises(TimeoutError) as caught:
            await wait_for_state(hub, run_id, RunState.SUCCEEDED, timeout=0.1)
    assert str(caught.value) == (
        f"run {run_id} of 'flaky' is still retry_scheduled, due at 2026-06-01T00:01:00+00:00 "
        "after 0.1 s (clock at 2026-06-01T00:00:00+00:00), not succeeded"
    )
