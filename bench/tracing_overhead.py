"""What OpenTelemetry costs a worker: drain N no-op jobs with tracing off, then on.

usage: python bench/tracing_overhead.py [--jobs 10000] [--repeat 3]

Starts a private redis-server on a free loopback port (never the shared one). Each pass runs
in a fresh interpreter: 200 single enqueues (the enqueue rate), a bulk enqueue of the rest,
then one in-process worker (concurrency 50) drains them; it reports jobs/s and the worker
process's CPU per job. "off" is OpenTelemetry installed with no provider set (the default);
"on" sets an SDK provider with a SimpleSpanProcessor into the in-memory exporter (a
BatchSpanProcessor costs less). The passes alternate; the median of each is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import private_redis  # the benchmark's own private redis-server

from hub_scheduler import Hub, Job, JobContext


def _trace_in_memory() -> None:
    from opentelemetry import trace  # noqa: PLC0415 - only the "on" passes load the SDK
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)


async def one_pass(url: str, jobs: int, prefix: str) -> dict[str, float]:
    """Enqueue, then drain `jobs` no-op runs; the rates and the CPU per job."""
    async with Hub(url, prefix=prefix) as hub:
        done = asyncio.Event()
        count = 0

        @hub.job("noop")
        async def noop(ctx: JobContext) -> None:
            del ctx
            nonlocal count
            count += 1
            if count == jobs:
                done.set()

        began = time.perf_counter()
        for _ in range(200):
            await hub.enqueue("noop")
        enqueue = 200 / (time.perf_counter() - began)
        await hub.enqueue_many([Job("noop", {}) for _ in range(jobs - 200)])
        cpu, wall = time.process_time(), time.perf_counter()
        async with hub.worker(concurrency=50):
            await asyncio.wait_for(done.wait(), 300)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"enqueue_per_s": enqueue, "drain_per_s": jobs / wall, "cpu_us": cpu / jobs * 1e6}


def main() -> None:
    """Alternate passes with tracing off and on against a private redis-server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pass", dest="one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one pass, JSON on stdout
        url, mode, prefix = args.one
        if mode == "on":
            _trace_in_memory()
        print(json.dumps(asyncio.run(one_pass(url, args.jobs, prefix))))
        return
    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        for i in range(args.repeat):
            for mode, passes in results.items():
                argv = [sys.executable, __file__, "--jobs", str(args.jobs), "--pass",
                        server.url, mode, f"trace{i}{mode}"]  # fmt: skip
                done = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603
                passes.append(json.loads(done.stdout.splitlines()[-1]))
    for mode, passes in results.items():
        medians = {k: statistics.median(p[k] for p in passes) for k in passes[0]}
        print(
            f"tracing {mode:<3}  enqueue {medians['enqueue_per_s']:7,.0f}/s  "
            f"drain {medians['drain_per_s']:7,.0f}/s  worker cpu {medians['cpu_us']:6.1f} us/job"
        )


if __name__ == "__main__":
    main()
