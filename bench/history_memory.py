"""Redis memory per history record: run N no-op jobs through hub_scheduler, divide the growth.

usage: python bench/history_memory.py [--runs 20000]

Starts a private redis-server on a free loopback port (never the shared one), runs 1,000 no-op
jobs first (what a hub costs once: its scripts, the archive's hashes, the job's statistics),
then enqueues N runs of one job, drains them with one in-process worker, and reports
`used_memory` growth / N, plus `MEMORY USAGE` per run of the archive of finished runs and of
each history index.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import redis.asyncio as aioredis
from run import private_redis  # the benchmark's own private redis-server

from hub_scheduler import Hub, Job, JobContext

WARM_UP = 1_000


async def measure(url: str, runs: int) -> None:
    """Print the bytes per succeeded run and the parts they are made of."""
    client = aioredis.Redis.from_url(url)
    async with Hub(url, prefix="mem") as hub:
        done = asyncio.Event()
        count, target = 0, WARM_UP

        @hub.job("syncXero")
        async def job(ctx: JobContext) -> None:
            del ctx
            nonlocal count
            count += 1
            if count == target:
                done.set()

        async def drain(n: int) -> None:
            done.clear()
            await hub.enqueue_many([Job("syncXero", {"tenant": "acme", "i": i}) for i in range(n)])
            await asyncio.wait_for(done.wait(), 300)

        async with hub.worker(concurrency=50):
            await drain(WARM_UP)
            before = (await client.info("memory"))["used_memory"]
            target += runs
            await drain(runs)
    after = (await client.info("memory"))["used_memory"]
    total = runs + WARM_UP
    archives = [key async for key in client.scan_iter("{mem}:done:*")]
    archived = sum([await client.memory_usage(key, samples=0) or 0 for key in archives])
    index = await client.memory_usage("{mem}:history", samples=0) or 0
    job_index = await client.memory_usage("{mem}:history:syncXero", samples=0) or 0
    print(f"runs: {runs} (after {WARM_UP} to warm up)")
    print(f"used_memory growth per run: {(after - before) / runs:.0f} bytes")
    print(f"archive of finished runs: {archived / total:.0f} bytes/run")
    print(f"index of all runs: {index / total:.0f} bytes/run; of the job: {job_index / total:.0f}")
    await client.aclose()


def main() -> None:
    """Run the measurement against a private redis-server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        asyncio.run(measure(server.url, args.runs))


if __name__ == "__main__":
    main()
