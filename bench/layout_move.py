"""The move of a Redis history index from data layout 1 (sorted sets) to layout 2 (streams):
how long it takes per run, and how long other clients wait meanwhile.

usage: python bench/layout_move.py [--runs 200000] [--jobs 10]

Starts a private redis-server (never the shared one), writes `--runs` finished runs the way
layout 1 kept them (a hash each, one in a thousand dead, and the two sorted-set indexes),
then times `RedisStore.ensure_layout()` (what the first process of a new version runs) while
another client sends PING after PING and records how long each took to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis
from run import percentile, private_redis  # the benchmark's own private redis-server

from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.domain.ports import BackendConfig
from hub_scheduler.testing import FakeClock

PREFIX = "move"
ENQUEUED_MS = 1_796_347_787_224


async def write_layout_1(client: aioredis.Redis, runs: int, jobs: int) -> None:
    """`runs` finished runs as layout 1 stored them."""
    key = f"{{{PREFIX}}}"
    async with client.pipeline(transaction=False) as pipe:
        for i in range(runs):
            run_id, job, at = f"{i:016x}", f"job{i % jobs}", ENQUEUED_MS + i
            state = "dead" if i % 1000 == 0 else "succeeded"
            pipe.hset(f"{key}:run:{run_id}", mapping={
                "v": 1, "job": job, "pri": 10, "att": 1, "enq": at, "tok": 1, "trg": "manual",
                "pl": "{}", "st": state, "rdy": at, "sta": at, "wrk": "w", "fin": at + 1,
            })  # fmt: skip
            pipe.zadd(f"{key}:runs", {run_id: at})
            pipe.zadd(f"{key}:runs:{job}", {run_id: at})
            pipe.sadd(f"{key}:jobs", job)
            if i % 5000 == 4999:
                await pipe.execute()
        await pipe.execute()


async def measure(url: str, runs: int, jobs: int) -> None:
    """Write layout 1, move it, print the figures."""
    client = aioredis.Redis.from_url(url)
    other = aioredis.Redis.from_url(url)
    await write_layout_1(client, runs, jobs)
    backend = RedisBackend.on_client(
        client, url, BackendConfig(FakeClock(datetime.now(UTC)), PREFIX)
    )
    waits: list[float] = []
    moving = True

    async def ping() -> None:
        while moving:
            started = time.perf_counter()
            await other.ping()
            waits.append(time.perf_counter() - started)

    pinger = asyncio.create_task(ping())
    started = time.perf_counter()
    await backend.store.ensure_layout()
    took = time.perf_counter() - started
    moving = False
    await pinger
    indexed = await client.xlen(f"{{{PREFIX}}}:history")
    dead = await client.xlen(f"{{{PREFIX}}}:history-state:dead")
    waits.sort()
    print(f"runs: {runs:,} over {jobs} jobs; moved {indexed:,} (dead indexed: {dead:,})")
    print(f"move: {took:.2f} s, {took / runs * 1e6:.1f} µs a run")
    print(f"PING meanwhile ({len(waits):,}): p50 {percentile(waits, 50) * 1000:.2f} ms, "
          f"p99 {percentile(waits, 99) * 1000:.2f} ms, max {waits[-1] * 1000:.2f} ms")  # fmt: skip
    await client.aclose()
    await other.aclose()


def main() -> None:
    """Run the measurement against a private redis-server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        asyncio.run(measure(server.url, args.runs, args.jobs))


if __name__ == "__main__":
    main()
