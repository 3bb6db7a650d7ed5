"""Run-history reads with many finished runs: ``/jobs/history`` with and without a state
filter, through the real ASGI app, p50/p99.

usage:
    python bench/history_reads.py --url redis://127.0.0.1:6394/0 [--url postgresql://...]
        [--runs 100000] [--samples 50] [--before /path/to/another/checkout]

Each (tree, store) runs in a subprocess with that tree's ``src`` first on ``PYTHONPATH``, so
``--before`` measures another checkout on the same kind of store. The subprocess writes, under
a fresh prefix, three runs that died (the oldest) and then ``--runs`` that succeeded, claimed
and settled through the queue port in batches of 500; then it times each read ``--samples``
times after one warm-up call. The store's data is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from admin_reads import drop_prefix  # the same store clean-up

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
SECRET = "bench-secret-" + "x" * 40
READS = {
    "all, page of 50": "/api/v1/jobs/history?limit=50",
    "status=dead": "/api/v1/jobs/history?status=dead&limit=50",
    "status=dead, one job": "/api/v1/jobs/history?status=dead&job=doomed&limit=50",
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(url: str, runs: int, samples: int) -> dict[str, Any]:
    """One store with the hub_scheduler first on the path: seconds per read."""
    import httpx  # noqa: PLC0415

    import hub_scheduler  # noqa: PLC0415
    from hub_scheduler import Hub  # noqa: PLC0415
    from hub_scheduler.domain.model import ErrorInfo  # noqa: PLC0415
    from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded  # noqa: PLC0415
    from hub_scheduler.domain.retry import GiveUp  # noqa: PLC0415
    from hub_scheduler.entrypoints.api.app import create_app  # noqa: PLC0415
    from hub_scheduler.entrypoints.api.security import mint_token  # noqa: PLC0415
    from hub_scheduler.entrypoints.settings import Settings  # noqa: PLC0415

    prefix = f"bench-history-{uuid.uuid4().hex[:10]}"
    if url.startswith("postgresql"):
        from hub_scheduler.adapters.postgres.schema import migrate  # noqa: PLC0415

        await migrate(url, prefix)
    lease = timedelta(minutes=5)
    result: dict[str, Any] = {"code": str(Path(hub_scheduler.__file__).parents[2]), "reads": {}}
    try:
        async with Hub(url, prefix=prefix) as hub:
            for name in ("doomed", "fine"):
                hub.job(name)(_noop)
            started = time.perf_counter()
            await hub.queue.enqueue([EnqueueRequest("doomed") for _ in range(3)])
            for claim in await hub.queue.claim("bench", 3, lease):
                await hub.queue.finish(claim, Failed(ErrorInfo("E", "gone"), GiveUp(1)))
            for start in range(0, runs, 500):
                count = min(500, runs - start)
                await hub.queue.enqueue([EnqueueRequest("fine") for _ in range(count)])
                claims = await hub.queue.claim("bench", count, lease)
                await hub.queue.exchange("bench", [(c, Succeeded()) for c in claims], 0, lease)
            result["seed_seconds"] = round(time.perf_counter() - started, 2)
            settings = Settings(
                url=url, jwt_secret=SECRET, rate_limit_reads=10**9, rate_limit_mutations=10**9
            )
            app = create_app(hub, settings)
            token = mint_token(SECRET, "bench", "JobViewer", timedelta(hours=1))
            api = {"Authorization": f"Bearer {token}"}
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                for label, path in READS.items():
                    first = await client.get(path, headers=api)  # warm-up: scripts load
                    assert first.status_code == 200, first.text
                    body = first.json()
                    found = len(body["items"] if isinstance(body, dict) else body)
                    times = []
                    for _ in range(samples):
                        begun = time.perf_counter()
                        answer = await client.get(path, headers=api)
                        times.append(time.perf_counter() - begun)
                        assert answer.status_code == 200, answer.text
                    result["reads"][label] = {
                        "p50_ms": round(_percentile(times, 0.5) * 1000, 1),
                        "p99_ms": round(_percentile(times, 0.99) * 1000, 1),
                        "mean_ms": round(statistics.fmean(times) * 1000, 1),
                        "items": found,
                    }
    finally:
        await drop_prefix(url, prefix)
    return result


async def _noop(ctx: Any) -> None:
    del ctx


def _run_one(tree: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{HERE}"}
    command = [sys.executable, __file__, "--one", "--url", url, "--runs", str(args.runs),
               "--samples", str(args.samples)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{tree} on {url.partition('://')[0]}: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Measure each tree on each store and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", action="append", help="a store (repeatable)")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--before", type=Path, help="another checkout to measure first")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    urls = args.url or ["redis://127.0.0.1:6379/0"]
    if args.one:
        print(json.dumps(asyncio.run(measure(urls[0], args.runs, args.samples))))
        return
    trees = ([("before", args.before)] if args.before else []) + [("this", TREE)]
    print(f"| tree | store | read | p50 ms | p99 ms | items | ({args.runs:,} runs + 3 dead) |")
    print("|---|---|---|---|---|---|---|")
    for name, tree in trees:
        for url in urls:
            result = _run_one(tree, url, args)
            for label, read in result["reads"].items():
                print(f"| {name} | {url.partition('://')[0]} | {label} | {read['p50_ms']} | "
                      f"{read['p99_ms']} | {read['items']} | |")  # fmt: skip


if __name__ == "__main__":
    main()
