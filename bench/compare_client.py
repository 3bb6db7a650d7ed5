"""The enqueue side of `compare.py` for the Python systems (BullMQ's is `node/bench.mjs`).

One JSON object per stdout line; the clock runs inside this process, between `go` and done.

  --mode single  N sequential awaited enqueues          -> ready, (go), done {seconds, cpu_s}
  --mode bulk    one batch call of N (the library's API) -> ready, (go), done
  --mode fill    N jobs the fastest way, untimed (a drain's backlog) -> done
  --mode paced   20 warm-up jobs, then (go) N jobs one every --interval-ms, each with its
                 enqueue time `t` in the payload        -> warm, (go), done

usage: python bench/compare_client.py --system saq --mode single --jobs 10000
(BENCH_REDIS_URL names the private Redis; run with bench/ on PYTHONPATH.)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from typing import Any

PYTHON_SYSTEMS = ("hub", "taskiq", "saq", "dramatiq", "floor")
WARMUP_ENQUEUES = 200  # untimed, before single/bulk: first-use costs of client and server
LATENCY_WARMUP_JOBS = 20


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def wait_for_go() -> None:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(2)


async def run(args: argparse.Namespace) -> None:
    module = importlib.import_module(f"apps.{args.system}_app")
    client = module.Client()
    await client.open()
    try:
        if args.mode == "fill":
            await client.fill([{"i": i} for i in range(args.jobs)])
            emit("done", jobs=args.jobs)
        elif args.mode == "paced":
            await paced(client, args)
        else:
            await timed(client, args)
    finally:
        await client.close()


async def timed(client: Any, args: argparse.Namespace) -> None:
    for i in range(WARMUP_ENQUEUES):
        await client.enqueue_one({"i": -1 - i})
    payloads = [{"i": i} for i in range(args.jobs)]
    emit("ready")
    await wait_for_go()
    cpu, started = time.process_time(), time.perf_counter()
    if args.mode == "bulk":
        await client.enqueue_bulk(payloads)
    else:
        for payload in payloads:
            await client.enqueue_one(payload)
    seconds = time.perf_counter() - started
    emit("done", seconds=seconds, cpu_s=time.process_time() - cpu, jobs=args.jobs)


async def paced(client: Any, args: argparse.Namespace) -> None:
    emit("ready")
    await wait_for_go()
    for i in range(LATENCY_WARMUP_JOBS):
        await client.enqueue_one({"i": -1 - i})
    emit("warm")
    await wait_for_go()
    loop = asyncio.get_running_loop()
    interval = args.interval_ms / 1000
    first = loop.time()
    for i in range(args.jobs):  # on a fixed schedule, not one interval after each enqueue
        await asyncio.sleep(max(0.0, first + i * interval - loop.time()))
        await client.enqueue_one({"i": i, "t": time.time()})
    emit("done", seconds=loop.time() - first, jobs=args.jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=PYTHON_SYSTEMS)
    parser.add_argument("--mode", required=True, choices=("single", "bulk", "fill", "paced"))
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
