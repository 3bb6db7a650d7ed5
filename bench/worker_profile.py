"""The worker's Python cost per job, for one or more source trees side by side.

One worker process (`hub.worker()` in-process, as ``hub-scheduler worker`` runs it) drains N
no-op jobs that each INCR a Redis counter; the process reports its drain rate and the CPU it
spent (user + system) per job. Trees are interleaved within each repeat, so they share the
machine's noise; each figure is the median of --repeat.

usage:
  python bench/worker_profile.py measure --tree main=/path/to/main/src --tree this=src
      [--concurrency 5,50] [--jobs 20000] [--repeat 3] [--url redis://127.0.0.1:6393/0]
  python bench/worker_profile.py profile --tree this=src [--concurrency 5] [--jobs 20000]
      [--top 30] [--out bench/results/worker_profile.txt]

A tree is NAME=PATH (PATH holds the `hub_scheduler` package); NAME=PATH,plain runs it without
the `speed` extra even when it is installed: no uvloop, no orjson, and no hiredis for trees from
before hiredis became a dependency (the tree's "before" state). Each run FLUSHes
the Redis database of --url first: give it a private Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.abc
import importlib.util
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_URL = "redis://127.0.0.1:6393/0"
JOB = "bench_noop"
COUNTER = "bench:worker_profile:count"
PREFIX = "wprof"
PLAIN_ENV = "HUB_BENCH_PLAIN"


# --- the worker process -------------------------------------------------------------------


class _Block(importlib.abc.MetaPathFinder):
    """Makes `names` unimportable (a "plain" tree: without the speed extra)."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, *_: object) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ImportError(f"{fullname} blocked by {PLAIN_ENV}")


def _child(args: argparse.Namespace) -> None:
    if os.environ.get(PLAIN_ENV):
        extra = {"uvloop", "orjson"}
        if importlib.util.find_spec("hub_scheduler.adapters.redis.pipelined") is None:
            extra.add("hiredis")  # in the speed extra until the tree needed it
        sys.meta_path.insert(0, _Block(extra))
    factory = None
    try:
        # The CLI's own choice of event loop, where the tree has one.
        from hub_scheduler.entrypoints.cli.common import loop_factory  # noqa: PLC0415

        factory = loop_factory()
    except ImportError:  # a tree from before the choice existed: asyncio's loop
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(_drain(args))
    import redis.utils  # noqa: PLC0415 - after the plain tree's import block

    result["hiredis"] = bool(redis.utils.HIREDIS_AVAILABLE)
    print(json.dumps(result), flush=True)


async def _drain(args: argparse.Namespace) -> dict[str, Any]:
    # Imported here, in the worker process: from the tree on its PYTHONPATH, once a plain
    # tree's import block is in place.
    import redis.asyncio as aioredis  # noqa: PLC0415

    from hub_scheduler import Hub, Job, JobContext  # noqa: PLC0415

    hub = Hub(args.url, prefix=PREFIX)
    counter = aioredis.Redis.from_url(args.url)
    done = asyncio.Event()
    seen = 0

    @hub.job(JOB)
    async def noop(ctx: JobContext) -> None:
        del ctx
        nonlocal seen
        await counter.incr(COUNTER)
        seen += 1
        if seen == args.jobs:
            done.set()

    for start in range(0, args.jobs, 1000):
        count = min(1000, args.jobs - start)
        await hub.enqueue_many([Job(JOB, {"n": start + i}) for i in range(count)])
    profile = cProfile.Profile() if args.profile_out else None
    async with hub.worker(concurrency=args.concurrency):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        await asyncio.wait_for(done.wait(), args.timeout)
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    counted = int(await counter.get(COUNTER) or 0)
    await counter.aclose()
    await hub.aclose()
    if profile is not None:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        Path(args.profile_out).write_text(out.getvalue())  # noqa: ASYNC240 - after the clock
    return {
        "jobs": args.jobs,
        "counted": counted,
        "seconds": wall,
        "jobs_per_s": args.jobs / wall,
        "cpu_us_per_job": cpu / args.jobs * 1e6,
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }


# --- the driver -----------------------------------------------------------------------------


def _trees(specs: Sequence[str]) -> list[tuple[str, Path, bool]]:
    trees = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, flag = rest.partition(",")
        if not name or not path or flag not in {"", "plain"}:
            sys.exit(f"--tree {spec!r}: expected NAME=PATH or NAME=PATH,plain")
        root = Path(path).resolve()
        if not (root / "hub_scheduler" / "__init__.py").exists():
            sys.exit(f"--tree {spec!r}: no hub_scheduler package in {root}")
        trees.append((name, root, flag == "plain"))
    return trees


def _flush(url: str) -> None:
    import redis  # noqa: PLC0415 - the driver does not import the trees' packages

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def _run_one(  # noqa: PLR0917 - one call site per subcommand
    url: str, tree: Path, plain: bool, concurrency: int, jobs: int, extra: Sequence[str] = ()
) -> dict[str, Any]:
    _flush(url)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop(PLAIN_ENV, None)
    if plain:
        env[PLAIN_ENV] = "1"
    command = [
        sys.executable, __file__, "_worker", "--url", url, "--concurrency", str(concurrency),
        "--jobs", str(jobs), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        sys.exit(f"worker on {tree} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["counted"] != jobs:
        sys.exit(f"worker on {tree}: {result['counted']} of {jobs} jobs counted")
    return result


def _measure(args: argparse.Namespace) -> None:
    trees = _trees(args.tree)
    levels = [int(c) for c in args.concurrency.split(",")]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for repeat in range(args.repeat):
        for concurrency in levels:
            for name, root, plain in trees:
                result = _run_one(args.url, root, plain, concurrency, args.jobs)
                runs.setdefault((name, concurrency), []).append(result)
                print(
                    f"  [{repeat + 1}/{args.repeat}] {name:>8} c={concurrency:<3} "
                    f"{result['jobs_per_s']:8.0f} jobs/s {result['cpu_us_per_job']:7.1f} µs/job "
                    f"(loop {result['loop']}, hiredis {result['hiredis']})",
                    flush=True,
                )
    load = os.getloadavg()[0]
    print(f"\nmedian of {args.repeat}, {args.jobs} jobs, load average {load:.2f}")
    first = trees[0][0]
    print(f"{'tree':>8} {'conc':>4} {'jobs/s':>9} {'CPU µs/job':>11} {'vs ' + first:>16}")
    summary = []
    for concurrency in levels:
        base = runs[first, concurrency]
        base_rate = statistics.median(r["jobs_per_s"] for r in base)
        base_cpu = statistics.median(r["cpu_us_per_job"] for r in base)
        for name, _, _ in trees:
            rate = statistics.median(r["jobs_per_s"] for r in runs[name, concurrency])
            cpu = statistics.median(r["cpu_us_per_job"] for r in runs[name, concurrency])
            ratio = f"{rate / base_rate:.2f}x / {base_cpu / cpu:.2f}x"
            print(f"{name:>8} {concurrency:>4} {rate:9.0f} {cpu:11.1f} {ratio:>16}")
            summary.append({"tree": name, "concurrency": concurrency, "jobs_per_s": rate,
                            "cpu_us_per_job": cpu})  # fmt: skip
    print("(ratios: drain rate, and CPU per job as first tree's / this tree's)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"load": load, "runs": summary}, indent=2))


def _profile(args: argparse.Namespace) -> None:
    for name, root, plain in _trees(args.tree):
        out = Path(args.out.format(tree=name)).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        extra = ["--profile-out", str(out), "--top", str(args.top)]
        result = _run_one(args.url, root, plain, int(args.concurrency), args.jobs, extra)
        print(f"{name}: {result['cpu_us_per_job']:.1f} µs/job under cProfile; top {args.top} "
              f"by self time in {out}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("measure", "profile"):
        p = sub.add_parser(command)
        p.add_argument("--tree", action="append", required=True, help="NAME=PATH[,plain]")
        p.add_argument("--url", default=DEFAULT_URL)
        p.add_argument("--jobs", type=int, default=20_000)
    measure = sub.choices["measure"]
    measure.add_argument("--concurrency", default="5,50")
    measure.add_argument("--repeat", type=int, default=3)
    measure.add_argument("--out", default=None, help="also write the medians as JSON here")
    profile = sub.choices["profile"]
    profile.add_argument("--concurrency", default="5")
    profile.add_argument("--top", type=int, default=30)
    profile.add_argument("--out", default="bench/results/worker_profile-{tree}.txt")
    child = sub.add_parser("_worker")
    child.add_argument("--url", required=True)
    child.add_argument("--concurrency", type=int, required=True)
    child.add_argument("--jobs", type=int, required=True)
    child.add_argument("--timeout", type=float, default=600.0)
    child.add_argument("--profile-out", default=None)
    child.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    {"measure": _measure, "profile": _profile, "_worker": _child}[args.command](args)


if __name__ == "__main__":
    main()
