"""Client CPU per single `hub.enqueue` call, source tree against source tree, interleaved.

usage: python bench/enqueue_cpu.py --tree before=/path/to/a/checkout --tree this=.
           [--calls 3000] [--repeat 5]

Starts a private redis-server. Each pass runs every tree in turn, in a subprocess with that
tree's ``src`` first on ``PYTHONPATH``: a hub on the private server enqueues 500 unmeasured
runs, then `--calls` sequential awaited ``hub.enqueue`` calls, and reports the process CPU
time per call (``time.process_time``: the Python side, not Redis). The table gives each
tree's median over the passes and its ratio to the first tree's.
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
import uuid
from pathlib import Path

from run import private_redis  # the benchmark's own private redis-server

HERE = Path(__file__).resolve().parent


async def _one(url: str, calls: int) -> float:
    """µs of this process's CPU per ``hub.enqueue`` on the tree first on the path."""
    from hub_scheduler import Hub  # noqa: PLC0415

    hub = Hub(url, prefix=f"bench-enq-{uuid.uuid4().hex[:8]}")

    @hub.job("noop")
    async def noop(ctx: object) -> None:
        del ctx

    async with hub:
        for _ in range(500):
            await hub.enqueue("noop", {"i": 0})
        started = time.process_time()
        for i in range(calls):
            await hub.enqueue("noop", {"i": i})
        return (time.process_time() - started) / calls * 1e6


def main() -> None:
    """Measure each tree `--repeat` times, interleaved, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", default=[], help="name=path (repeatable)")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(_one(args.one, args.calls))))
        return
    trees = [
        (name, Path(path).resolve()) for name, _, path in (t.partition("=") for t in args.tree)
    ]
    if not trees:
        trees = [("this", HERE.parent)]
    results: dict[str, list[float]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        for _ in range(args.repeat):
            for name, tree in trees:
                env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{HERE}"}
                command = [
                    sys.executable,
                    __file__,
                    "--one",
                    server.url,
                    "--calls",
                    str(args.calls),
                ]
                done = subprocess.run(  # noqa: S603 - our interpreter and script
                    command, env=env, capture_output=True, text=True, check=True
                )
                results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = statistics.median(results[trees[0][0]])
    print(f"| tree | µs CPU per hub.enqueue (median of {args.repeat}) | vs {trees[0][0]} |")
    print("|---|---|---|")
    for name, _ in trees:
        median = statistics.median(results[name])
        print(f"| {name} | {median:.1f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
