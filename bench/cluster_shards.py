"""Drain throughput of one hub on a Redis Cluster with 1, 2, 3 and 6 shards (``?shards=N``).

For each shard count, under a fresh prefix: enqueue N no-op runs spread over several jobs
with the queue paused, start the same worker processes every time (default 3 processes at
concurrency 5, each a `Hub(url).worker()` in a fresh interpreter), wait until all are
connected, resume the queue (the clock starts), and stop it when every run has succeeded
(the queue's own snapshot, polled every 20 ms). Shard counts are interleaved, each repeated;
the median pass is reported, with ratios to 1 shard, the CPU seconds each master spent
(``INFO cpu`` before and after) and the CPU seconds of the worker processes.

usage: .venv/bin/python bench/cluster_shards.py [--url redis+cluster://h:p,...]
           [--runs 5000] [--jobs 12] [--shards 1,2,3,6] [--processes 3] [--concurrency 5]
           [--repeat 3] [--out bench/results/cluster_shards.json]

The URL defaults to ``HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL`` (``.ci/redis-topologies start``
starts a local three-master Cluster and prints it). Only keys under the bench's own prefixes
are written, and they are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio.cluster import RedisCluster

from hub_scheduler import Hub
from hub_scheduler.adapters.backends import open_backend
from hub_scheduler.adapters.clock import SystemClock
from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.adapters.sharded import ShardedBackend
from hub_scheduler.domain.ports import Backend, BackendConfig, EnqueueRequest

POLL_S = 0.02
ENQUEUE_BATCH = 1000


def job_names(count: int) -> list[str]:
    return [f"noop{i}" for i in range(count)]


def sharded_url(url: str, shards: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}shards={shards}" if shards > 1 else url


# --- the worker process ---------------------------------------------------------------------


async def worker_main(url: str, prefix: str, jobs: int, concurrency: int) -> None:
    """Run a worker for every job until stdin says ``stop``; then print its CPU time."""
    hub = Hub(url, prefix=prefix)
    for name in job_names(jobs):
        hub.job(name)(lambda _: None)
    async with hub:
        await hub.backend.ping()
        async with hub.worker(concurrency=concurrency):
            print(json.dumps({"event": "ready"}), flush=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.readline)
    print(json.dumps({"event": "done", "cpu_s": time.process_time()}), flush=True)


# --- the harness ----------------------------------------------------------------------------


async def master_cpu(url: str) -> dict[str, float]:
    """CPU seconds (user + sys) each master of the Cluster has used, by node name."""
    client = RedisCluster.from_url(url.replace("redis+cluster://", "redis://", 1).split(",")[0])
    try:
        await client.initialize()
        found = {}
        for node in client.get_primaries():
            info = await client.info("cpu", target_nodes=node)
            found[node.name] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return found
    finally:
        await client.aclose()


async def drop_prefix(backend: Backend) -> None:
    shards = backend.shards if isinstance(backend, ShardedBackend) else [backend]
    for shard in shards:
        assert isinstance(shard, RedisBackend)
        client = shard.client
        pattern = f"{{{shard.config.prefix}}}*"
        doomed = [key async for key in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(doomed), 500):
            # One slot per shard: delete in batches (a Cluster refuses cross-slot DEL).
            await client.delete(*doomed[start : start + 500])


def spawn(command: list[str]) -> subprocess.Popen[str]:
    """A worker process (started before the clock runs, so blocking here costs nothing)."""
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # noqa: S603 (our own argv)


async def one_pass(args: argparse.Namespace, shards: int) -> dict[str, Any]:
    url = sharded_url(args.url, shards)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    backend = open_backend(url, BackendConfig(SystemClock(), prefix))
    workers: list[subprocess.Popen[str]] = []
    try:
        await backend.queue.pause()
        names = job_names(args.jobs)
        requests = [EnqueueRequest(names[i % len(names)]) for i in range(args.runs)]
        for start in range(0, len(requests), ENQUEUE_BATCH):
            await backend.queue.enqueue(requests[start : start + ENQUEUE_BATCH])
        command = [sys.executable, __file__, "--worker", "--url", url, "--prefix", prefix,
                   "--jobs", str(args.jobs), "--concurrency", str(args.concurrency)]  # fmt: skip
        workers.extend(spawn(command) for _ in range(args.processes))
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.to_thread(worker.stdout.readline)
            if json.loads(line or "{}").get("event") != "ready":
                raise RuntimeError("a worker did not start")
        cpu_before = await master_cpu(args.url)
        started = time.perf_counter()
        await backend.queue.resume()
        deadline = started + args.timeout
        while True:
            snapshot = await backend.queue.snapshot()
            if snapshot.succeeded >= args.runs:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"drain timed out: {snapshot}")
            await asyncio.sleep(POLL_S)
        elapsed = time.perf_counter() - started
        cpu_after = await master_cpu(args.url)
        worker_cpu = 0.0
        for worker in workers:
            assert worker.stdin is not None
            assert worker.stdout is not None
            worker.stdin.write("stop\n")
            worker.stdin.flush()
            line = await asyncio.to_thread(worker.stdout.readline)
            worker_cpu += float(json.loads(line)["cpu_s"])
            worker.wait(timeout=30)
        return {
            "shards": shards,
            "seconds": elapsed,
            "runs_per_s": args.runs / elapsed,
            "master_cpu_s": {n: round(cpu_after[n] - cpu_before[n], 3) for n in cpu_after},
            "worker_cpu_s": round(worker_cpu, 3),
        }
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        await drop_prefix(backend)
        await backend.aclose()


def table(medians: list[dict[str, Any]], wall: dict[int, list[float]]) -> str:
    base = medians[0]["runs_per_s"]
    lines = [
        "| shards | drain runs/s (median) | vs 1 shard | passes runs/s | CPU s per master "
        "(sorted) | worker CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for result in medians:
        shards = result["shards"]
        masters = " / ".join(
            f"{v:.2f}" for v in sorted(result["master_cpu_s"].values(), reverse=True)
        )
        passes = ", ".join(f"{r:,.0f}" for r in wall[shards])
        lines.append(
            f"| {shards} | {result['runs_per_s']:,.0f} | {result['runs_per_s'] / base:.2f}x "
            f"| {passes} | {masters} | {result['worker_cpu_s']:.2f} |"
        )
    return "\n".join(lines)


def save(out: Path, results: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


async def harness(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.shards.split(",")]
    passes: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    for repeat in range(args.repeat):
        for shards in counts:
            result = await one_pass(args, shards)
            passes[shards].append(result)
            print(
                f"pass {repeat + 1} shards={shards}: {result['runs_per_s']:,.0f} runs/s, "
                f"masters {result['master_cpu_s']}, workers {result['worker_cpu_s']} s",
                flush=True,
            )
    medians = []
    for shards in counts:
        ordered = sorted(passes[shards], key=lambda r: r["runs_per_s"])
        medians.append(ordered[len(ordered) // 2])
    wall = {n: [r["runs_per_s"] for r in passes[n]] for n in counts}
    print()
    print(
        f"{args.runs:,} no-op runs over {args.jobs} jobs, {args.processes} worker processes "
        f"at concurrency {args.concurrency}, {args.repeat} passes, {os.cpu_count()} cores"
    )
    print(table(medians, wall))
    save(Path(args.out), {"args": vars(args), "passes": passes})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL"))
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--shards", default="1,2,3,6")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", default="bench/results/cluster_shards.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.url:
        parser.error("--url or HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL is required")
    if args.worker:
        asyncio.run(worker_main(args.url, args.prefix, args.jobs, args.concurrency))
    else:
        asyncio.run(harness(args))


if __name__ == "__main__":
    main()
