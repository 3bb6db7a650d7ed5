"""PostgreSQL restarted under load, on a private cluster: stopped fast (sessions ended, a
checkpoint) or immediately (a crash: the next start replays the WAL). The worker, the enqueuing
side and a scheduler carry on; nothing enqueued is lost or run twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from hub_scheduler import Every, Hub, Job, JobContext, Priority, Run, RunState, SlotOutcome
from hub_scheduler.adapters.postgres import migrate
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.ports import Signals
from tests.postgres.pg_server import (
    POSTGRES_BIN_ENV,
    PostgresServer,
    PostgresServerError,
    StopMode,
    find_bin_dir,
)

pytestmark = pytest.mark.postgres

#: Runs enqueued in bulk once the scheduler has fired (the worker drains them at ~500/s).
BACKLOG = 400
#: Runs enqueued one at a time, every `TRICKLE_GAP` seconds, while it drains, through the
#: outage and until the worker is woken by a NOTIFY again (at most `TRICKLE_MAX`).
TRICKLE = 250
TRICKLE_MAX = 1500
TRICKLE_GAP = 0.01
#: What each run's "work" takes (seconds): with 5 at once, the backlog lasts ~1 s.
WORK = 0.01
#: Runs of the backlog (about) done when the server is stopped.
RESTART_AFTER = 100
#: How long the server stays down: longer than the schedule's 1 s interval, so a slot comes
#: due during the outage.
DOWN = 1.5


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for this module: skipped without binaries (unless
    `POSTGRES_BIN_ENV` says where they are: then a failure is a failure)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(f"initdb/pg_ctl not found and {POSTGRES_BIN_ENV} is not set")
    # Not pytest's tmp_path: when run as root, the postgres user must be able to enter it.
    root = Path(tempfile.mkdtemp(prefix="hubtest-pg-"))
    server = PostgresServer(bin_dir, root)
    try:
        try:
            server.init()
            server.start_now()
        except PostgresServerError as exc:
            pytest.fail(f"the PostgreSQL binaries in {bin_dir} do not work: {exc}")
        yield server
    finally:
        if server.running:
            with contextlib.suppress(PostgresServerError):
                server.stop_now("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def server(cluster: PostgresServer) -> PostgresServer:
    """The module's cluster, running (a failed test may have left it stopped)."""
    if not cluster.running:
        await cluster.start()
    return cluster


@attrs.define
class HeardSignals:
    """`Signals` that also set `heard` whenever a wake-up reaches the subscriber."""

    inner: Signals
    heard: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def wakeups(self) -> AsyncIterator[bool]:
        """See `Signals.wakeups`."""
        async for signalled in self.inner.wakeups():
            if signalled:
                self.heard.set()
            yield signalled

    def schedule_changes(self) -> AsyncIterator[bool]:
        """See `Signals.schedule_changes`."""
        return self.inner.schedule_changes()


async def _all_runs(hub: Hub, job: str) -> dict[str, Run]:
    runs: dict[str, Run] = {}
    cursor = None
    while True:
        page = await hub.history.list(job=job, cursor=cursor, limit=500)
        runs.update((run.id, run) for run in page.items)
        if page.next_cursor is None:
            return runs
        cursor = page.next_cursor


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_restart_under_load_loses_nothing(
    server: PostgresServer, mode: StopMode, caplog: pytest.LogCaptureFixture
) -> None:
    """Server down 1.5 s mid-drain: each run whose enqueue returned succeeds, once unless its
    lease expired; worker, enqueuer, wake-ups and scheduler come back; each slot fires once."""
    caplog.set_level(logging.WARNING)
    prefix = f"hubtest-{uuid.uuid4().hex[:12]}"
    await migrate(server.url, prefix)
    hub = Hub(server.url, prefix=prefix)
    calls: Counter[str] = Counter()
    returned: list[str] = []
    outcomes: list[bool] = []  # per trickled enqueue: did it return a run id?
    ticks: list[datetime] = []
    outage: list[datetime] = []  # when the server was stopped, when it was up again
    restart_at: list[int] = []  # stop the server when this many runs were done
    first_tick, ready_to_restart = asyncio.Event(), asyncio.Event()
    trickled, finished = asyncio.Event(), asyncio.Event()

    def check() -> None:
        if restart_at and len(calls) >= restart_at[0]:
            ready_to_restart.set()
        fired_after = len(outage) == 2 and max(ticks) >= outage[1] + timedelta(seconds=1)
        if trickled.is_set() and fired_after and calls.keys() >= set(returned):
            finished.set()

    @hub.job("work")
    async def work(ctx: JobContext) -> None:
        calls[ctx.run_id] += 1
        await asyncio.sleep(WORK)  # the job's work: what keeps runs active through the restart
        check()

    # High priority: a fire is not stuck behind the backlog; its run says the slot fired.
    @hub.job("tick", priority=Priority.HIGH, schedules=[Every(timedelta(seconds=1))])
    async def tick(ctx: JobContext) -> None:
        assert ctx.run.slot is not None
        ticks.append(ctx.run.slot)
        first_tick.set()
        check()

    worker = hub.worker(concurrency=5, lease=timedelta(seconds=3))
    assert worker.signals is not None
    signals = worker.signals = HeardSignals(worker.signals)

    async def trickle() -> None:
        for i in itertools.count():
            woken_again = len(outage) == 2 and signals.heard.is_set()
            if (i >= TRICKLE and woken_again) or i >= TRICKLE_MAX:
                break
            try:
                returned.append(await hub.enqueue("work", {"i": i}))
                outcomes.append(True)
            except BackendUnavailableError:
                outcomes.append(False)  # the caller knows: it may enqueue again
            await asyncio.sleep(TRICKLE_GAP)  # the pace of the experiment
        trickled.set()
        check()

    async with hub:
        async with worker, hub.scheduling():
            enqueuer = asyncio.create_task(trickle())
            try:
                await asyncio.wait_for(first_tick.wait(), 20)
                returned.extend(
                    await hub.enqueue_many([Job("work", {"b": i}) for i in range(BACKLOG)])
                )
                restart_at.append(len(calls) + RESTART_AFTER)
                await asyncio.wait_for(ready_to_restart.wait(), 20)
                waiting_at_restart = len(set(returned) - calls.keys())
                await server.stop(mode)
                outage.append(datetime.now(UTC))
                await asyncio.sleep(DOWN)  # the length of the outage: part of the experiment
                await server.start()
                outage.append(datetime.now(UTC))
                signals.heard.clear()  # the old subscription died with its connection
                await asyncio.wait_for(finished.wait(), 40)
                await enqueuer  # re-raises anything but the domain's unavailability
            finally:
                enqueuer.cancel()
        runs = await _all_runs(hub, "work")
        fired = await _all_runs(hub, "tick")
        ledger = (await hub.schedules.slots("tick:0", limit=1000)).items

    assert waiting_at_restart > 0, "the restart did not land mid-drain"
    assert outcomes[-10:] == [True] * 10, "the enqueuing side did not reconnect"
    assert signals.heard.is_set(), "the worker's wake-ups did not come back"
    # An enqueue that raised may still have committed: at most one unknown run per failure.
    assert calls.keys() >= set(returned)
    assert len(calls.keys() - set(returned)) <= outcomes.count(False)
    assert {runs[run_id].state for run_id in calls} == {RunState.SUCCEEDED}
    assert {run_id: n for run_id, n in calls.items() if n > 1 + runs[run_id].stalls} == {}
    slots = sorted(run.slot for run in fired.values() if run.slot is not None)
    assert len(slots) == len(fired) == len(set(slots))
    assert slots[0] < outage[0]
    assert outage[1] + timedelta(seconds=1) <= slots[-1]
    assert any(outage[0] < slot < outage[1] for slot in slots), "no slot came due while down"
    steps = {b - a for a, b in itertools.pairwise(slots)}
    assert steps == {timedelta(seconds=1)}
    assert sorted(record.slot for record in ledger) == slots
    assert {(record.outcome, record.count) for record in ledger} == {(SlotOutcome.ENQUEUED, 1)}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
