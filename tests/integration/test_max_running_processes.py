"""Flow control across real worker processes, one of them SIGKILLed mid-run, on a real Redis
and PostgreSQL, measured from the handlers' own start and end times: runs of a max_running=1
job never overlap, a 5/s job never starts more than 5 in any second, and every run succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from hub_scheduler import RunState
from hub_scheduler.domain.registry import Job, JobContext
from hub_scheduler.hub import Hub
from hub_scheduler.testing import wait_for_state
from tests.integration.conftest import Target

LIMIT_WORKER = Path(__file__).with_name("limit_worker.py")
RUNS = 30


def _events(path: Path) -> list[tuple[str, str, int, float]]:
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(what, run, int(pid), float(at)) for what, run, pid, at in rows]


async def _until(path: Path, condition: object, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Wait (looking every 20 ms) until `condition(events)` holds for the events file."""
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition(_events(path)):  # noqa: ASYNC110 - other processes write it
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _workers(
    target: Target, events: Path, count: int = 3
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """`count` worker processes of limit_worker.py; stopped (SIGTERM) afterwards."""
    env = {**os.environ, "HUB_URL": target.url, "HUB_PREFIX": target.prefix,
           "HUB_EVENTS": str(events)}  # fmt: skip
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, str(LIMIT_WORKER), env=env)
        for _ in range(count)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await worker.wait()


async def _kill_the_busy_one(events: Path, workers: list[asyncio.subprocess.Process]) -> float:
    """SIGKILL the worker running an attempt now (started, not ended); returns a time after
    which nothing it wrote can come."""
    await _until(events, lambda e: _running(e) is not None)
    victim_pid = _running(_events(events))
    victim = next(w for w in workers if w.pid == victim_pid)
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    return _events(events)[-1][3]


async def test_max_running_holds_across_processes_and_a_sigkill(
    shared_target: Target, tmp_path: Path
) -> None:
    """Three workers (concurrency 5 each) share a job limited to one run at a time; the one
    running it is killed with SIGKILL. The runs never overlap (the killed one's attempt ends
    when it was killed), and all of them succeed, the killed one after its lease ran out."""
    events = tmp_path / "events"
    async with Hub(shared_target.url, prefix=shared_target.prefix) as hub:

        @hub.job("exclusive", max_running=1)
        async def exclusive(ctx: JobContext) -> None:
            del ctx  # the processes run it; this registration only enqueues

        ids = await hub.enqueue_many([Job("exclusive", {"seconds": 0.05}) for _ in range(RUNS)])
        async with _workers(shared_target, events) as workers:
            await _until(events, lambda e: sum(1 for x in e if x[0] == "start") >= 5)
            killed_at = await _kill_the_busy_one(events, workers)
            runs = [await wait_for_state(hub, run_id, RunState.SUCCEEDED, 60) for run_id in ids]
    intervals = _intervals(_events(events), killed_at)
    assert len({run for run, _, _ in intervals}) == RUNS
    for (run_a, _, end_a), (run_b, start_b, _) in itertools.pairwise(intervals):
        assert start_b >= end_a, f"{run_b} started {end_a - start_b:.3f} s before {run_a} ended"
    assert sum(run.stalls for run in runs) == 1


async def test_a_rate_limit_holds_across_processes_and_a_sigkill(
    shared_target: Target, tmp_path: Path
) -> None:
    """Three workers share a job limited to 5 starts per second; one is killed with SIGKILL
    while it runs one. No window of one second holds more than 5 starts (a retried attempt
    counts as a start), and every run succeeds."""
    events = tmp_path / "events"
    async with Hub(shared_target.url, prefix=shared_target.prefix) as hub:

        @hub.job("throttled", rate_limit="5/s")
        async def throttled(ctx: JobContext) -> None:
            del ctx  # the processes run it; this registration only enqueues

        async with _workers(shared_target, events) as workers:
            # The limit is declared by the workers as they start: enqueue once all are up.
            await _until(events, lambda e: sum(1 for x in e if x[0] == "ready") == 3)
            ids = await hub.enqueue_many([Job("throttled", {"seconds": 0.3}) for _ in range(RUNS)])
            await _kill_the_busy_one(events, workers)
            runs = [await wait_for_state(hub, run_id, RunState.SUCCEEDED, 60) for run_id in ids]
    starts = sorted(at for what, _, _, at in _events(events) if what == "start")
    stalled = sum(run.stalls for run in runs)
    assert stalled >= 1  # the killed worker's runs ran again, each a start of its own
    assert len(starts) == RUNS + stalled
    # The store's own record of every start (the claims, stalled attempts included): any 6
    # consecutive ones span a second.
    claimed = sorted(a.started_at.timestamp() for run in runs for a in run.attempts)
    assert len(claimed) == len(starts)
    assert min(b - a for a, b in zip(claimed, claimed[5:], strict=False)) >= 0.999
    # The handlers' clocks agree, but for the time a busy process takes to start a claimed
    # run (without the limit, six would start within milliseconds of each other).
    assert min(b - a for a, b in zip(starts, starts[5:], strict=False)) >= 0.75


def _running(events: list[tuple[str, str, int, float]]) -> int | None:
    """The process running an attempt now (its start written, its end not), if any."""
    open_runs: dict[str, int] = {}
    for what, run, pid, _ in events:
        if what == "start":
            open_runs[run] = pid
        elif what == "end":
            open_runs.pop(run, None)
    return next(iter(open_runs.values()), None)


def _intervals(
    events: list[tuple[str, str, int, float]], killed_at: float
) -> list[tuple[str, float, float]]:
    """Every attempt as (run, start, end), by start; one never ended ends at the kill."""
    started: dict[tuple[str, int], float] = {}
    spans = []
    for what, run, pid, at in events:
        if what == "start":
            started[(run, pid)] = at
        elif what == "end":
            spans.append((run, started.pop((run, pid)), at))
    spans += [(run, at, killed_at) for (run, _), at in started.items()]
    return sorted(spans, key=lambda span: span[1])
