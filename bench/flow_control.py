"""What flow control costs a drain: one worker process, no-op jobs, with and without limits.

For each variant, under a fresh prefix: enqueue N runs of one job, start one worker in this
process, and time until every handler ran (an event the handlers set; no polling). Variants
are interleaved, each repeated; the median pass is reported as jobs/s and as a ratio to
``plain``. The limits are set so that they never bind (max_running 10,000 with concurrency
5; a rate of 10,000/s, keyed or not), so the ratio is the bookkeeping's price, not a limit's
effect. The workflow variants run the same number of steps as workflows of 10 (nine side by
side then a callback, or a chain of ten): the ratio is what applying each step's event costs.
The cancel watcher and the per-settle bookkeeping run in every variant, ``plain``
included: compare ``plain`` with the same command on an older checkout (``PYTHONPATH=<it>/src``)
for those.

It also times enqueueing: N single ``hub.enqueue`` calls against one ``hub.enqueue_template``
of N overrides (the issue asks the template to stay at least 10x faster).

usage: .venv/bin/python bench/flow_control.py [--backend redis|postgres] [--runs 5000]
           [--concurrency 5] [--repeat 3] [--variants plain,max_running,...]
           [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

variants: plain, max_running, rate, rate_key, workflow_group, workflow_chain.

Redis: a private redis-server on a free loopback port (started and stopped here).
PostgreSQL: a private database ``hubbench_flow_<random>`` on the server at --postgres-url,
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from run import private_redis

from hub_scheduler import Hub, Job, JobContext, chain, group, step

#: Each variant: the keyword arguments of `hub.job`, and how a payload is built.
VARIANTS: dict[str, tuple[dict[str, Any], Callable[[int], dict[str, Any]]]] = {
    "plain": ({}, lambda n: {"n": n}),
    "max_running": ({"max_running": 10_000}, lambda n: {"n": n}),
    "rate": ({"rate_limit": "10000/s"}, lambda n: {"n": n}),
    "rate_key": ({"rate_limit": "10000/s", "rate_key": "tenant"},
                 lambda n: {"n": n, "tenant": f"t{n % 100}"}),
    # Workflows of 10 steps each (started before the clock starts: only their first steps
    # are queued then; every other step is enqueued by the worker as its inputs end).
    "workflow_group": ({}, lambda n: {"n": n}),  # 9 side by side, then a callback
    "workflow_chain": ({}, lambda n: {"n": n}),  # 10 one after the other
}  # fmt: skip
#: Steps per workflow in the workflow variants.
STEPS = 10


def _flow(variant: str, first: int) -> Any:
    steps = [step("noop", {"n": first + i}, name=f"s{i}") for i in range(STEPS)]
    if variant == "workflow_group":
        return group(*steps[:-1], then=steps[-1])
    return chain(*steps)


async def drain(url: str, variant: str, runs: int, concurrency: int) -> float:
    """Seconds for one worker to run `runs` runs of a job with `variant`'s limits."""
    options, payload = VARIANTS[variant]
    prefix = f"flow-{uuid.uuid4().hex[:8]}"
    done = asyncio.Event()
    count = 0
    async with Hub(url, prefix=prefix) as hub:
        if url.startswith("postgresql"):
            from hub_scheduler.adapters.postgres import drop_schema, migrate  # noqa: PLC0415

            await migrate(url, prefix)

        @hub.job("noop", **options)
        async def noop(ctx: JobContext) -> None:
            del ctx
            nonlocal count
            count += 1
            if count == runs:
                done.set()

        if variant.startswith("workflow"):
            for first in range(0, runs, STEPS):
                await hub.start_workflow(_flow(variant, first))
        else:
            await hub.enqueue_many([Job("noop", payload(n)) for n in range(runs)])
        began = time.perf_counter()
        async with hub.worker(concurrency=concurrency):
            await asyncio.wait_for(done.wait(), 600)
            took = time.perf_counter() - began
        if url.startswith("postgresql"):
            await drop_schema(url, prefix)
        else:
            await hub.backend.queue.pause()  # nothing left; keys go with the server
    return took


@contextlib.asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    """A private database on `server_url`'s server, dropped afterwards."""
    import psycopg  # noqa: PLC0415 - only this backend needs it

    name = f"hubbench_flow_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def enqueue_rates(url: str, runs: int) -> tuple[float, float]:
    """Runs enqueued per second: one `enqueue` call each, and one `enqueue_template` call."""
    prefix = f"flow-{uuid.uuid4().hex[:8]}"
    async with Hub(url, prefix=prefix) as hub:
        if url.startswith("postgresql"):
            from hub_scheduler.adapters.postgres import drop_schema, migrate  # noqa: PLC0415

            await migrate(url, prefix)
        hub.job("noop")(_noop)
        began = time.perf_counter()
        for n in range(runs):
            await hub.enqueue("noop", {"n": n})
        single = runs / (time.perf_counter() - began)
        began = time.perf_counter()
        await hub.enqueue_template(Job("noop", {"n": 0}), [{"n": n} for n in range(runs)])
        template = runs / (time.perf_counter() - began)
        if url.startswith("postgresql"):
            await drop_schema(url, prefix)
    return single, template


async def _noop(ctx: JobContext) -> None:
    del ctx


async def measure(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {v: [] for v in args.variants}
    rates["enqueue"], rates["enqueue_template"] = [], []
    await drain(url, "plain", min(args.runs, 500), args.concurrency)  # warm up
    for _ in range(args.repeat):
        for variant in args.variants:
            took = await drain(url, variant, args.runs, args.concurrency)
            rates[variant].append(args.runs / took)
            print(f"  {variant:12} {args.runs / took:8.0f} jobs/s", file=sys.stderr)
        single, template = await enqueue_rates(url, min(args.runs, 2000))
        rates["enqueue"].append(single)
        rates["enqueue_template"].append(template)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("redis", "postgres"), default="redis")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")

    async def run() -> dict[str, list[float]]:
        if args.backend == "postgres":
            async with postgres_database(args.postgres_url) as url:
                return await measure(url, args)
        with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
            return await measure(server.url, args)

    rates = asyncio.run(run())
    base = statistics.median(rates[args.variants[0]])
    print(f"{args.backend}, {args.runs} runs, concurrency {args.concurrency}, "
          f"median of {args.repeat}")  # fmt: skip
    print(f"| drain | jobs/s | vs {args.variants[0]} |\n|---|---|---|")
    for variant in args.variants:
        median = statistics.median(rates[variant])
        print(f"| {variant} | {median:,.0f} | {median / base:.2f}x |")
    single = statistics.median(rates["enqueue"])
    template = statistics.median(rates["enqueue_template"])
    print(f"\nenqueue: {single:,.0f} runs/s one call each; enqueue_template {template:,.0f} "
          f"runs/s ({template / single:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
