"""The benchmark's worker subprocess: one system's worker, run until N jobs have run.

Protocol with `run.py`, one JSON object per stdout line:

1. it connects (`system.open()`), then prints `{"event": "ready", ...}`;
2. it waits for the line `go` on stdin, starts the clock, and runs the worker;
3. when the N-th job has run it stops the clock, stops the worker gracefully, and prints
   `{"event": "done", ...}` with the elapsed time, the latencies (for jobs whose payload has
   an enqueue timestamp `t`), its CPU time and its peak RSS.

Jobs are counted in-process (a plain counter in the job handler), so measuring adds no server
traffic: the server-side counts `run.py` takes are the system's own.

usage: python bench/worker_proc.py --system taskiq-stream --url redis://127.0.0.1:PORT/0
           --concurrency 50 --jobs 20000 [--timeout 120]
       python bench/worker_proc.py --system pgqueuer
           --url postgresql://postgres@127.0.0.1:PORT/hubbench_1a2b3c4d --concurrency 5 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from systems import SYSTEMS, Payload, make_system

# After the last job, how long the worker may take to stop (no-op jobs: it should be instant).
STOP_GRACE_S = 5.0


class JobCounter:
    """Counts executed jobs; sets `finished` when the target is reached."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.finished = asyncio.Event()
        self.finished_at: float | None = None
        self.latencies_ms: list[float] = []

    def __call__(self, payload: Payload) -> None:
        started = time.time()
        enqueued = payload.get("t")
        if isinstance(enqueued, float):
            self.latencies_ms.append((started - enqueued) * 1000.0)
        self.count += 1
        if self.count == self.target:
            self.finished_at = time.perf_counter()
            self.finished.set()


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def wait_for_go() -> bool:
    """Block until run.py writes `go` (False on anything else, e.g. EOF)."""
    line: str = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.strip() == "go"


async def run(args: argparse.Namespace) -> int:
    system = make_system(args.system, args.url, worker_concurrency=args.concurrency)
    await system.open()
    emit("ready", pid=os.getpid())
    async with asyncio.timeout(args.timeout):
        go = await wait_for_go()
    if not go:
        await system.close()
        return 2

    counter = JobCounter(args.jobs)
    stop = asyncio.Event()
    cpu_start = time.process_time()
    started = time.perf_counter()
    worker = asyncio.create_task(system.run_worker(args.concurrency, counter, stop))
    timed_out = False
    try:
        await asyncio.wait_for(counter.finished.wait(), args.timeout)
    except TimeoutError:
        timed_out = True
    stop.set()
    # asyncio.wait, not wait_for: a worker that swallowed a cancellation would hang wait_for.
    await asyncio.wait({worker}, timeout=STOP_GRACE_S)
    stop_hung = not worker.done()
    cpu_s = time.process_time() - cpu_start
    error = None
    if not stop_hung:
        exc = worker.exception()
        error = None if exc is None else f"{type(exc).__name__}: {exc}"
        await system.close()

    finished_at = counter.finished_at or time.perf_counter()
    emit(
        "done",
        jobs=counter.count,
        target=args.jobs,
        timed_out=timed_out,
        stop_hung=stop_hung,
        error=error,
        seconds=finished_at - started,
        worker_cpu_s=cpu_s,
        peak_rss_mb=peak_rss_mb(),
        latencies_ms=counter.latencies_ms,
    )
    code = 1 if timed_out or error else 0
    if stop_hung:
        # The worker did not return after `stop` (see README, "Surprises"): leave without
        # running its cleanup, which would wait on it forever.
        logging.getLogger(__name__).warning("worker did not stop within %s s", STOP_GRACE_S)
        sys.stderr.flush()
        os._exit(code)
    return code


def is_private_url(url: str) -> bool:
    """A Redis on 127.0.0.1, or one of the harness's own PostgreSQL databases on this host."""
    parts = urlsplit(url)
    if parts.scheme == "redis":
        return parts.hostname == "127.0.0.1"
    return (
        parts.scheme == "postgresql"
        and parts.hostname in {"127.0.0.1", "localhost", "::1"}
        and parts.path.startswith("/hubbench_")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    parser.add_argument("--url", required=True, help="the private Redis or PostgreSQL database")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--jobs", type=int, required=True, help="stop after this many jobs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds, per wait")
    args = parser.parse_args()
    if not is_private_url(args.url):
        parser.error("the benchmark only talks to a Redis on 127.0.0.1 or a hubbench_ database")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
