"""The scheduler at scale: N schedules every T seconds, fired by R scheduler processes.

usage: python bench/scheduler_scale.py [--schedules 10000] [--every 10] [--replicas 1]
                                       [--seconds 30] [--url URL] [--lookahead 0]

Starts a private redis-server (or uses --url: a Redis or PostgreSQL URL), declares N jobs with
one ``Every(T)`` schedule each and measures:

- sync: `Hub.sync_schedules` of the N declared schedules into an empty store, then again
  with nothing changed;
- fire lateness p50/p99/max (enqueue time minus slot, from `Scheduler.lateness`; a run fired
  ahead with --lookahead is ready on its slot and counts 0) over the
  window; the schedules start --lead seconds after the script (time to sync, and for the
  replica processes to import and start), the window --warmup seconds after that;
- scheduler CPU µs per fire (process CPU time over the window / fires in it, summed over the
  replica processes) and Redis CPU µs per fire (INFO cpu);
- stop latency: each replica is asked to stop 20 ms after a slot instant, while its slots are
  due, and reports how long `run` took to return.

Every slot of the window must have fired exactly once: the script counts the runs of every
schedule and prints gaps or duplicates if any.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis
from run import private_redis  # the benchmark's own private redis-server

from hub_scheduler import Every, Hub, JobContext, Schedule

PREFIX = "scale"
STOP_CAP = 30.0  # seconds a replica is given to stop before it is cancelled


async def _noop(ctx: JobContext) -> None:
    del ctx


def make_hub(url: str, schedules: int, every: float, start: float) -> Hub:
    """A hub with `schedules` jobs, each on one ``Every(every)`` schedule whose first slot is
    `start` (epoch seconds): every slot of every schedule falls on the same instants."""
    hub = Hub(url, prefix=PREFIX)
    first = datetime.fromtimestamp(start, UTC)
    for i in range(schedules):
        schedule = Schedule(Every(timedelta(seconds=every)), start=first)
        hub.job(f"tick{i:05d}", schedules=[schedule])(_noop)
    return hub


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def child(args: argparse.Namespace) -> None:
    """One replica: run a scheduler from ``--start`` (epoch) for ``--seconds``, print JSON."""
    url, schedules, every, start = args.url, args.schedules, args.every, args.start
    seconds, warmup = args.seconds, args.warmup
    async with make_hub(url, schedules, every, start) as hub:
        # Every fire, not the last 10,000.
        scheduler = hub.scheduler(lateness=deque(), lookahead=timedelta(seconds=args.lookahead))
        task = asyncio.create_task(scheduler.run())
        # Up before the first slot (the parent leaves time to import), then a warm-up.
        await asyncio.sleep(max(0.0, start + warmup - time.time()))
        skip, cpu0, t0 = len(scheduler.lateness), _cpu(), time.time()
        end = t0 + seconds
        # Ask to stop 20 ms after a slot instant (while slots are due).
        stop_at = math.floor(end / every) * every + 0.02
        if stop_at < t0 + every:
            stop_at += every
        await asyncio.sleep(max(0.0, stop_at - time.time()))
        cpu1 = _cpu()
        late = list(scheduler.lateness)[skip:]
        asked = time.perf_counter()
        scheduler.stop()
        done, _ = await asyncio.wait({task}, timeout=STOP_CAP)
        stopped = time.perf_counter() - asked if done else float("inf")
        if not done:  # reported as "inf": it did not stop within STOP_CAP seconds
            task.cancel()
            await asyncio.wait({task})
    print(json.dumps({"late": late, "cpu": cpu1 - cpu0, "window": stop_at - t0,
                      "stop": stopped}))  # fmt: skip


async def _redis_cpu(url: str) -> float:
    client = Redis.from_url(url)
    try:
        info = await client.info("cpu")
    finally:
        await client.aclose()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _clear(url: str) -> None:
    """Start from an empty store: a flushed Redis, or a fresh PostgreSQL schema."""
    if url.startswith("redis"):
        client = Redis.from_url(url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()
    elif url.startswith("postgres"):
        from hub_scheduler.adapters.postgres import drop_schema, migrate  # noqa: PLC0415

        await drop_schema(url, PREFIX)
        await migrate(url, PREFIX)  # what `hub-scheduler db migrate` runs


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(len(values) * q))] if values else float("nan")


async def measure(url: str, args: argparse.Namespace) -> None:
    """Sync, run the replicas, print the figures."""
    schedules, every, replicas = args.schedules, args.every, args.replicas
    seconds, warmup = args.seconds, args.warmup
    await _clear(url)
    # The first slot: time to sync, then for the replicas to import and start (slow on a
    # loaded machine), so the window measures firing on time, not a start-up backlog.
    start = math.ceil((time.time() + args.lead) / every) * every
    async with make_hub(url, schedules, every, start) as hub:
        t = time.perf_counter()
        await hub.sync_schedules()
        first = time.perf_counter() - t
        t = time.perf_counter()
        await hub.sync_schedules()
        again = time.perf_counter() - t
        print(f"sync of {schedules} declared: {first * 1000:.0f} ms into an empty store, "
              f"{again * 1000:.0f} ms unchanged")  # fmt: skip
        cmd = [sys.executable, __file__, "--child", "--url", url, "--schedules", str(schedules),
               "--every", str(every), "--seconds", str(seconds), "--start", str(start),
               "--warmup", str(warmup), "--lookahead", str(args.lookahead)]  # fmt: skip
        procs = [
            await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
            for _ in range(replicas)
        ]
        redis_cpu0 = None
        if url.startswith("redis"):
            await asyncio.sleep(max(0.0, start - time.time()) + warmup)
            redis_cpu0 = await _redis_cpu(url)
        outs = [json.loads((await p.communicate())[0].strip().splitlines()[-1]) for p in procs]
        redis_cpu = None if redis_cpu0 is None else await _redis_cpu(url) - redis_cpu0
        states = await hub.schedules.list()
        counts = sorted(s.runs for s in states)
    late = sorted(x * 1000 for o in outs for x in o["late"])
    fires = len(late)
    cpu = sum(o["cpu"] for o in outs)
    window = max(o["window"] for o in outs)
    expected = schedules / every * window
    print(f"{schedules} schedules every {every:g} s, {replicas} replica(s), "
          f"lookahead {args.lookahead:g} s, {window:.1f} s window:"
          f" {fires} fires ({fires / window:.0f}/s; expected ~{expected:.0f})")  # fmt: skip
    print(f"  lateness ms: p50 {_pct(late, 0.5):.1f}  p99 {_pct(late, 0.99):.1f}  "
          f"max {late[-1] if late else float('nan'):.1f}")  # fmt: skip
    per = f"{cpu / fires * 1e6:.0f}" if fires else "n/a"
    print(f"  scheduler CPU per fire: {per} µs (sum over replicas: {cpu:.2f} s)", end="")
    if redis_cpu is not None and fires:
        print(f"; Redis CPU per fire: {redis_cpu / fires * 1e6:.0f} µs", end="")
    print()
    print("  stop latency ms: " + ", ".join(f"{o['stop'] * 1000:.0f}" for o in outs))
    spread = 1 + math.ceil(args.lookahead / every)  # fired ahead: up to that many slots more
    print(f"  runs per schedule: min {counts[0]} max {counts[-1]} (all slots since sync fire once:"
          f" the spread is at most {spread} unless a slot was skipped or doubled)")  # fmt: skip


def main() -> None:
    """Parse arguments and measure (or be one replica, with --child)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--url", default=None)
    warmup = "seconds from the first slot to the window (default: 1 interval, 2 s or more)"
    parser.add_argument("--warmup", type=float, default=None, help=warmup)
    lead = "seconds from now to the first slot (default: 10 + 3 per replica)"
    parser.add_argument("--lead", type=float, default=None, help=lead)
    ahead = "seconds ahead the schedulers fire slots, as runs delayed to them (default 0)"
    parser.add_argument("--lookahead", type=float, default=0.0, help=ahead)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = max(2.0, args.every) + 0.5
    if args.lead is None:
        args.lead = 10.0 + 3 * args.replicas
    if args.child:
        asyncio.run(child(args))
        return
    if args.url:
        asyncio.run(measure(args.url, args))
        return
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        asyncio.run(measure(server.url, args))


if __name__ == "__main__":
    main()
