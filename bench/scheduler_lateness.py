"""Scheduler fire lateness: how long after its slot each run is enqueued.

usage: python bench/scheduler_lateness.py [--seconds 30] [--schedules 20] [--replicas 3]

Starts a private redis-server, registers N jobs each on a 1-second schedule, runs R scheduler
replicas in this process (they race for every slot; each slot fires once) and reports the
lateness of every on-time fire (enqueue time minus slot, from `Scheduler.lateness`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path

from run import private_redis  # the benchmark's own private redis-server

from hub_scheduler import Every, Hub, JobContext


async def _noop(ctx: JobContext) -> None:
    del ctx


async def measure(url: str, seconds: float, schedules: int, replicas: int) -> None:
    """Run the replicas for `seconds` and print lateness percentiles in milliseconds."""
    async with Hub(url, prefix="late") as hub:
        for i in range(schedules):
            hub.job(f"tick{i}", schedules=[Every(timedelta(seconds=1))])(_noop)
        await hub.sync_schedules()
        runners = [hub.scheduler() for _ in range(replicas)]
        tasks = [asyncio.create_task(r.run()) for r in runners]
        await asyncio.sleep(seconds)
        for runner in runners:
            runner.stop()
        await asyncio.gather(*tasks)
        late = sorted(ms * 1000 for r in runners for ms in r.lateness)
        fired = sum(state.runs for state in await hub.schedules.list())
    p50 = statistics.median(late)
    p99 = late[min(len(late) - 1, round(len(late) * 0.99))]
    print(f"{schedules} schedules x 1 s, {replicas} replicas, {seconds:g} s: {fired} runs fired")
    print(f"lateness ms: p50 {p50:.2f}  p99 {p99:.2f}  max {late[-1]:.2f}")


def main() -> None:
    """Measure against a private redis-server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        asyncio.run(measure(server.url, args.seconds, args.schedules, args.replicas))


if __name__ == "__main__":
    main()
