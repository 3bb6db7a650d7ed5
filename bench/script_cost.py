"""Redis time spent in hub_scheduler's Lua scripts, source tree against source tree.

usage: python bench/script_cost.py --tree before=/path/to/checkout/src --tree this=src
           [--jobs 20000] [--concurrency 5] [--repeat 3]

Starts a private redis-server. Each pass runs every tree in turn, in a subprocess with that
tree's ``src`` first on ``PYTHONPATH``, and measures, from ``INFO commandstats``:

- the preamble: µs per EVALSHA of a script that is only the preamble every script runs
  first, less that of an empty script (10,000 calls);
- a drain: EVALSHA µs per job while one in-process worker (``--concurrency``) drains
  ``--jobs`` no-op runs enqueued beforehand (settling, claiming and archiving them).

The table gives each tree's median over the passes. The Redis server's own time only: the
client's is `worker_profile.py`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import private_redis  # the benchmark's own private redis-server

HERE = Path(__file__).resolve().parent


def _evalsha_usec(client: object) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})  # type: ignore[attr-defined]
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _preamble_us(url: str) -> float:
    """µs per call the preamble adds to a script."""
    import redis  # noqa: PLC0415

    from hub_scheduler.adapters.redis.scripts import preamble  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    per_call = {}
    for name, source in (("empty", "return 1"), ("preamble", preamble() + "return 1")):
        sha = client.script_load(source)
        client.config_resetstat()
        pipe = client.pipeline(transaction=False)
        for _ in range(10_000):
            pipe.evalsha(sha, 1, "{bench}:x", "{bench}")
        pipe.execute()
        calls, usec = _evalsha_usec(client)
        per_call[name] = usec / calls
    return per_call["preamble"] - per_call["empty"]


async def _drain_us(url: str, jobs: int, concurrency: int) -> tuple[float, float]:
    """(EVALSHA µs per job, jobs/s) while one worker drains `jobs` runs."""
    import redis  # noqa: PLC0415

    from hub_scheduler import Hub, Job, JobContext  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    client.flushdb()
    async with Hub(url, prefix="script-cost") as hub:
        done, count = asyncio.Event(), 0

        @hub.job("noop")
        async def noop(ctx: JobContext) -> None:
            del ctx
            nonlocal count
            count += 1
            if count == jobs:
                done.set()

        await hub.enqueue_many([Job("noop", {"tenant": "acme", "i": i}) for i in range(jobs)])
        client.config_resetstat()
        started = time.perf_counter()
        async with hub.worker(concurrency=concurrency):
            await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - started
    _, usec = _evalsha_usec(client)
    client.flushdb()
    return usec / jobs, jobs / elapsed


def _one(url: str, jobs: int, concurrency: int) -> None:
    per_job, rate = asyncio.run(_drain_us(url, jobs, concurrency))
    print(json.dumps({"preamble": _preamble_us(url), "drain": per_job, "rate": rate}))


def main() -> None:
    """Interleave the trees' passes and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", required=True, help="name=path/to/src")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one[0], int(args.one[1]), int(args.one[2]))
        return
    trees = [tuple(spec.split("=", 1)) for spec in args.tree]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        for n in range(args.repeat):
            for name, src in trees:
                env = {**os.environ, "PYTHONPATH": f"{Path(src).resolve()}{os.pathsep}{HERE}"}
                command = [sys.executable, str(HERE / "script_cost.py"), "--tree", "x=.",
                           "--one", server.url, str(args.jobs), str(args.concurrency)]  # fmt: skip
                done = subprocess.run(  # noqa: S603 - our interpreter and script
                    command, env=env, check=True, capture_output=True, text=True
                )
                results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                last = results[name][-1]
                print(
                    f"  [{n + 1}/{args.repeat}] {name:>8}: preamble {last['preamble']:.1f} "
                    f"µs/call, drain {last['drain']:.1f} µs/job, {last['rate']:.0f} jobs/s"
                )
    print(f"\nmedian of {args.repeat}, {args.jobs} jobs at concurrency {args.concurrency}")
    print(f"{'tree':>8}  preamble µs/call  scripts µs/job (drain)  jobs/s")
    for name, runs in results.items():
        pre = statistics.median(r["preamble"] for r in runs)
        drain = statistics.median(r["drain"] for r in runs)
        rate = statistics.median(r["rate"] for r in runs)
        print(f"{name:>8}  {pre:16.1f}  {drain:22.1f}  {rate:6.0f}")


if __name__ == "__main__":
    main()
