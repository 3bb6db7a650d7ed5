"""Admin reads at 100, 1,000 and 10,000 jobs: /jobs, /jobs/metrics, /schedules and the
dashboard's jobs table, through the real ASGI app, p50/p99 per size.

usage:
    python bench/admin_reads.py --url redis://127.0.0.1:6394/0 [--url postgresql://...]
        [--sizes 100,1000,10000] [--samples 30] [--before /path/to/a/main/worktree]
        [--budget 20] [--out bench/results/admin_reads.json]

Each (tree, backend, size) runs in a subprocess of its own with that tree's ``src`` first on
``PYTHONPATH``, so ``--before`` measures another checkout (say main's) with its own code on the
same store: the subprocess registers N no-op jobs with one schedule each, syncs the schedules,
runs one job in five once (succeeded, so statistics and last runs exist), signs a viewer in,
then times each read ``--samples`` times after one warm-up call (what the first call does once
— loading scripts, building an index — is not a page read). The store is written under a
fresh prefix, removed afterwards (Redis keys; the PostgreSQL schema). A read whose one call
takes longer than ``--budget`` seconds is sampled once, and skipped at the larger sizes
(reported as such); a faster one is sampled as often as fits the budget, at most ``--samples``
times (the table says how many). Bodies are one page on a tree that pages (100 jobs, the
API's default; the dashboard's table 50), everything on one that does not.
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

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
READS = {
    "/jobs": "/api/v1/jobs",
    "/jobs/metrics": "/api/v1/jobs/metrics",
    "/schedules": "/api/v1/schedules",
    "dashboard jobs": "/admin/fragments/jobs",
}
SECRET = "b" * 40


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _noop(ctx: Any) -> None:
    del ctx


async def drop_prefix(url: str, prefix: str) -> None:
    """Remove what the hub `prefix` stored."""
    if url.startswith("postgresql"):
        import psycopg  # noqa: PLC0415

        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}" CASCADE')
        return
    import redis.asyncio as aioredis  # noqa: PLC0415

    client = aioredis.Redis.from_url(url)
    try:
        doomed = [key async for key in client.scan_iter(match=f"{{{prefix}}}*", count=5000)]
        for start in range(0, len(doomed), 5000):
            await client.delete(*doomed[start : start + 5000])
    finally:
        await client.aclose()


async def measure(url: str, jobs: int, samples: int, budget: float, skip: list[str]) -> dict:
    """One size on one store with the hub_scheduler first on the path: seconds per read."""
    import httpx  # noqa: PLC0415

    import hub_scheduler  # noqa: PLC0415
    from hub_scheduler import Cron, Hub  # noqa: PLC0415
    from hub_scheduler.domain.ports import EnqueueRequest, Succeeded  # noqa: PLC0415
    from hub_scheduler.entrypoints.api.app import create_app  # noqa: PLC0415
    from hub_scheduler.entrypoints.api.security import mint_token  # noqa: PLC0415
    from hub_scheduler.entrypoints.settings import Settings  # noqa: PLC0415

    prefix = f"bench-reads-{uuid.uuid4().hex[:10]}"
    if url.startswith("postgresql"):
        from hub_scheduler.adapters.postgres.schema import migrate  # noqa: PLC0415

        await migrate(url, prefix)
    result: dict[str, Any] = {"code": str(Path(hub_scheduler.__file__).parents[2]), "reads": {}}
    try:
        async with Hub(url, prefix=prefix) as hub:
            names = [f"job{n:05d}" for n in range(jobs)]
            for name in names:
                hub.job(name, schedules=[Cron("0 2 * * *")])(_noop)
            started = time.perf_counter()
            await hub.sync_schedules()
            ran = names[::5]
            for start in range(0, len(ran), 500):
                chunk = ran[start : start + 500]
                await hub.queue.enqueue([EnqueueRequest(name) for name in chunk])
                for claim in await hub.queue.claim("bench", len(chunk), timedelta(minutes=5)):
                    await hub.queue.finish(claim, Succeeded())
            result["seed_seconds"] = round(time.perf_counter() - started, 2)
            settings = Settings(
                url=url, jwt_secret=SECRET, rate_limit_reads=10**9, rate_limit_mutations=10**9
            )
            app = create_app(hub, settings)
            token = mint_token(SECRET, "bench", "JobViewer", timedelta(hours=1))
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                signed_in = await client.post("/admin/login", data={"token": token})
                assert signed_in.status_code == 302, signed_in.text
                api = {"Authorization": f"Bearer {token}"}
                result["reads"] = await _time_reads(client, api, samples, budget, skip)
    finally:
        await drop_prefix(url, prefix)
    return result


async def _time_reads(
    client: Any, api: dict[str, str], samples: int, budget: float, skip: list[str]
) -> dict[str, Any]:
    """Each read of `READS`: one warm-up call, then `samples` timed ones."""
    reads: dict[str, Any] = {}
    for name, path in READS.items():
        if name in skip:
            reads[name] = {"skipped": f"over {budget:g} s at a smaller size"}
            continue
        headers = {} if path.startswith("/admin") else api
        first = time.perf_counter()
        warm = await client.get(path, headers=headers)
        first = time.perf_counter() - first
        assert warm.status_code == 200, (path, warm.status_code, warm.text[:300])
        times = [first]
        if first <= budget:
            # A slow read is sampled as often as fits the budget (at least once more).
            times = []
            for _ in range(max(1, min(samples, int(budget / max(first, 1e-6))))):
                at = time.perf_counter()
                response = await client.get(path, headers=headers)
                times.append(time.perf_counter() - at)
                assert response.status_code == 200
        body = warm.content
        rows = len(warm.json()) if path.startswith("/api") else body.count(b"<tr data-job")
        reads[name] = {
            "p50_ms": round(1000 * statistics.median(times), 1),
            "p99_ms": round(1000 * _percentile(times, 0.99), 1),
            "samples": len(times),
            "first_ms": round(1000 * first, 1),
            "items": rows,
            "bytes": len(body),
            "paged": "x-next-cursor" in warm.headers or b"jobs-next" in body,
        }
    return reads


def _run_one(tree: Path, url: str, jobs: int, args: argparse.Namespace, skip: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    command = [
        sys.executable, str(HERE / "admin_reads.py"), "--one", "--url", url, "--sizes", str(jobs),
        "--samples", str(args.samples), "--budget", str(args.budget), "--skip", ",".join(skip),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (our own argv)
    if done.returncode:
        raise SystemExit(f"{tree} {url} {jobs}: failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> str:
    lines = [
        "| tree | backend | jobs | read | p50 ms | p99 ms | samples | items | body |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for name, read in row["reads"].items():
            if "skipped" in read:
                lines.append(f"| {row['tree']} | {row['backend']} | {row['jobs']:,} | {name} | "
                             f"skipped ({read['skipped']}) | | | | |")  # fmt: skip
                continue
            lines.append(
                f"| {row['tree']} | {row['backend']} | {row['jobs']:,} | {name} | "
                f"{read['p50_ms']:,} | {read['p99_ms']:,} | {read['samples']} | "
                f"{read['items']:,} | {read['bytes'] / 1024:,.0f} KiB |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", help="a store (repeatable)")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds; see the docstring")
    parser.add_argument("--before", type=Path, help="another checkout to measure first")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    urls = args.url or ["redis://127.0.0.1:6379/0"]
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.one:
        skip = [s for s in args.skip.split(",") if s]
        print(json.dumps(asyncio.run(measure(urls[0], sizes[0], args.samples, args.budget, skip))))
        return
    trees = ([("before", args.before.resolve())] if args.before else []) + [("after", TREE)]
    rows = []
    for url in urls:
        backend = url.split(":", 1)[0]
        for label, tree in trees:
            slow: list[str] = []
            for jobs in sizes:
                row = _run_one(tree, url, jobs, args, slow)
                if Path(row["code"]).resolve() != tree.resolve():
                    raise SystemExit(f"{label}: ran the code of {row['code']}, not {tree}")
                row.update(tree=label, backend=backend, jobs=jobs)
                rows.append(row)
                print(f"{label} {backend} {jobs}: seeded in {row['seed_seconds']} s; " + ", ".join(
                    f"{n} {r.get('p50_ms', '-')}/{r.get('p99_ms', '-')} ms"
                    for n, r in row["reads"].items()), file=sys.stderr, flush=True)  # fmt: skip
                slow += [n for n, r in row["reads"].items()
                         if "skipped" in r or r["first_ms"] > 1000 * args.budget]  # fmt: skip
    load = os.getloadavg()
    print(_table(rows))
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs, "
          f"{args.samples} samples per read")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "load": load, "argv": sys.argv}, indent=1))


if __name__ == "__main__":
    main()
