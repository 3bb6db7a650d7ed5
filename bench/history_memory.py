"""Redis memory per history record: run N no-op jobs through hub_scheduler, divide the growth.

usage: python bench/history_memory.py [--runs 20000]

Starts a private redis-server on a free loopback port (never the shared one), enqueues N runs
of one job, drains them with one in-process worker, and reports `used_memory` growth / N,
plus `MEMORY USAGE` of one run record and of each index.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import redis.asyncio as aioredis
from run import private_redis  # the benchmark's own private redis-server

from hub_scheduler import Hub, Job, JobContext


async def measure(url: str, runs: int) -> None:
    """Print the bytes per succeeded run and the parts they are made of."""
    client = aioredis.Redis.from_url(url)
    before = (await client.info("memory"))["used_memory"]
    async with Hub(url, prefix="mem") as hub:
        done = asyncio.Event()
        count = 0

        @hub.job("syncXero")
        async def job(ctx: JobContext) -> None:
            del ctx
            nonlocal count
            count += 1
            if count == runs:
                done.set()

        await hub.enqueue_many([Job("syncXero", {"tenant": "acme", "i": i}) for i in range(runs)])
        async with hub.worker(concurrency=50):
            await asyncio.wait_for(done.wait(), 300)
    after = (await client.info("memory"))["used_memory"]
    [(_, first)] = await client.xrange("{mem}:history", count=1)
    record = await client.memory_usage("{mem}:run:" + first[b"r"].decode())
    index = await client.memory_usage("{mem}:history", samples=0)
    job_index = await client.memory_usage("{mem}:history:syncXero", samples=0)
    print(f"runs: {runs}")
    print(f"used_memory growth per run: {(after - before) / runs:.0f} bytes")
    print(f"one run record (hash): {record} bytes")
    print(
        f"index of all runs: {index / runs:.0f} bytes/run; index of the job: {job_index / runs:.0f}"
    )
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
