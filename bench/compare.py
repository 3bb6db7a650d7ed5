"""hub_scheduler against BullMQ, taskiq-redis, SAQ, Dramatiq and a redis-py floor, in one run.

usage: python bench/compare.py [--quick] [--repeat 3] [--jobs 5000] [--systems a,b]
                               [--out bench/results/compare.json]

Every system runs as its users run it: its worker is its own CLI in a process of its own
(`hub-scheduler worker`, `taskiq worker`, `saq`, `dramatiq`, `node bench/node/bench.mjs`; the
floor is `python -m apps.floor_app`), and its enqueues come from a client process of its own
(`compare_client.py`, or the Node script for BullMQ). All share one private redis-server on a
free 127.0.0.1 port, FLUSHALLed before every phase. The job INCRs `compare:done`; the harness
polls that counter, so it needs nothing from inside a worker. Systems are interleaved: each
pass runs every system's phases in turn; the table gives each metric's median over the
passes and its ratio to BullMQ's median. See bench/README.md ("compare.py") for each metric.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from run import cpu_model, percentile, private_redis

if TYPE_CHECKING:
    import psutil  # the bench extra; imported where used, so the tables import without it

BENCH_DIR = Path(__file__).resolve().parent
NODE_DIR = BENCH_DIR / "node"
VENV_BIN = Path(sys.executable).parent
DONE_KEY = "compare:done"
LATENCY_KEY = "compare:lat"
BASELINE = "bullmq"
POLL_S = 0.005  # the harness reads the counter every 5 ms while a worker runs
START_TIMEOUT_S = 60.0  # worker start (imports, connect) until its first job
LATENCY_WARMUP_JOBS = 20  # compare_client.py and bench.mjs send as many before the timed jobs
STOP_GRACE_S = 10.0
PACKAGES = ("hub-scheduler", "taskiq", "taskiq-redis", "saq", "dramatiq", "redis", "psutil")


# --- the systems ---------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    """How to run one system's worker and client; `bulk` is False when it has no batch API."""

    name: str
    label: str
    worker: Callable[[str, int], list[str]]  # (redis url, concurrency) -> argv
    bulk: bool
    runs: str  # what the worker command is, for the README and the JSON
    python_module: str | None = None  # the import a Python system needs (else: Node)

    def client(self, url: str, mode: str, jobs: int, interval_ms: float) -> list[str]:
        if self.python_module is None:
            return [
                "node",
                str(NODE_DIR / "bench.mjs"),
                "client",
                "--url",
                url,
                "--mode",
                mode,
                "--jobs",
                str(jobs),
                "--interval-ms",
                str(interval_ms),
            ]
        return [
            sys.executable,
            str(BENCH_DIR / "compare_client.py"),
            "--system",
            self.name,
            "--mode",
            mode,
            "--jobs",
            str(jobs),
            "--interval-ms",
            str(interval_ms),
        ]


def _bin(name: str) -> str:
    return str(VENV_BIN / name)


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System(
            "bullmq",
            "BullMQ (Node)",
            lambda url, c: [
                "node",
                str(NODE_DIR / "bench.mjs"),
                "worker",
                "--url",
                url,
                "--concurrency",
                str(c),
            ],
            bulk=True,
            runs="new Worker(queue, job => INCR, {concurrency: C}); addBulk",
        ),
        System(
            "hub",
            "hub_scheduler",
            lambda url, c: [
                _bin("hub-scheduler"),
                "worker",
                "apps.hub_app:hub",
                "--url",
                url,
                "--concurrency",
                str(c),
            ],
            bulk=True,
            runs="hub-scheduler worker apps.hub_app:hub --concurrency C",
            python_module="hub_scheduler",
        ),
        System(
            "taskiq",
            "taskiq-redis stream",
            lambda _url, c: [
                _bin("taskiq"),
                "worker",
                "apps.taskiq_app:broker",
                "--workers",
                "1",
                "--max-async-tasks",
                str(c),
            ],
            bulk=False,
            runs="taskiq worker apps.taskiq_app:broker --workers 1 "
            "--max-async-tasks C (RedisStreamBroker, xread_count=C)",
            python_module="taskiq_redis",
        ),
        System(
            "saq",
            "SAQ",
            lambda _url, _c: [_bin("saq"), "apps.saq_app.settings", "--workers", "1"],
            bulk=False,
            runs="saq apps.saq_app.settings --workers 1 (concurrency C)",
            python_module="saq",
        ),
        System(
            "dramatiq",
            "Dramatiq",
            lambda _url, c: [
                _bin("dramatiq"),
                "apps.dramatiq_app",
                "--processes",
                "1",
                "--threads",
                str(c),
            ],
            bulk=False,
            runs="dramatiq apps.dramatiq_app --processes 1 --threads C (RedisBroker)",
            python_module="dramatiq",
        ),
        System(
            "floor",
            "redis-py floor",
            lambda _url, _c: [sys.executable, "-m", "apps.floor_app"],
            bulk=True,
            runs="python -m apps.floor_app: C tasks of BRPOP -> INCR; LPUSH",
            python_module="redis",
        ),
    )
}


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    jobs: int
    concurrencies: tuple[int, ...]
    latency_jobs: int
    latency_interval_ms: float
    latency_concurrency: int
    repeat: int
    systems: tuple[str, ...]

    @property
    def drain_timeout_s(self) -> float:
        return max(120.0, self.jobs / 50)


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit 2."""


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, Path, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1000 jobs, 100 latency jobs, 1 pass (unless given)",
    )
    parser.add_argument("--jobs", type=int, help="jobs per enqueue phase and drain (5000)")
    parser.add_argument("--repeat", type=int, help="interleaved passes (3; --quick 1)")
    parser.add_argument("--concurrency", default="5,50", help="drain concurrencies (5,50)")
    parser.add_argument("--latency-jobs", type=int, help="timed latency jobs (300)")
    parser.add_argument(
        "--latency-interval-ms",
        type=float,
        default=10.0,
        help="gap between latency jobs (10 ms: 100 jobs/s)",
    )
    parser.add_argument("--latency-concurrency", type=int, default=5)
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma list, in this order (default {','.join(SYSTEMS)})",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "compare.json")
    parser.add_argument(
        "--tables",
        type=Path,
        metavar="JSON",
        help="print the tables of a saved run (an --out file) and exit",
    )
    args = parser.parse_args(argv)
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        parser.error(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    try:
        concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    except ValueError:
        parser.error(f"--concurrency must be a comma list of integers, not {args.concurrency!r}")
    config = Config(
        jobs=args.jobs or (1_000 if args.quick else 5_000),
        concurrencies=concurrencies,
        latency_jobs=args.latency_jobs or (100 if args.quick else 300),
        latency_interval_ms=args.latency_interval_ms,
        latency_concurrency=args.latency_concurrency,
        repeat=args.repeat or (1 if args.quick else 3),
        systems=systems,
    )
    if (
        min(
            config.jobs,
            config.latency_jobs,
            config.repeat,
            config.latency_concurrency,
            *config.concurrencies,
        )
        < 1
        or not config.latency_interval_ms > 0
    ):
        parser.error("--jobs, --repeat, --concurrency and the latency options must be positive")
    return config, args.out, args.tables


# --- set-up: peers and Node -------------------------------------------------------------------


def check_prerequisites(config: Config) -> None:
    """Install BullMQ into bench/node when missing; UsageError for what we cannot install."""
    needed = [*(s.python_module for s in map(SYSTEMS.get, config.systems) if s), "psutil"]
    needed = [SYSTEMS[name].python_module for name in config.systems]
    missing = [m for m in [*needed, "psutil"] if m and importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"missing Python packages ({', '.join(missing)}): pip install -e '.[bench]'"
        )
    if shutil.which("redis-server") is None:
        raise UsageError("redis-server is not on PATH (apt-get install -y redis-server)")
    if "bullmq" not in config.systems:
        return
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise UsageError("BullMQ needs Node.js and npm (apt-get install -y nodejs npm)")
    if not (NODE_DIR / "node_modules" / "bullmq").is_dir():
        print("installing BullMQ into bench/node (npm ci, from package-lock.json) ...")
        done = subprocess.run(  # noqa: S603 - fixed argv, npm from PATH
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise UsageError(f"npm ci in bench/node failed: {tail}")


# --- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    """A worker or client subprocess: JSON lines on stdout, `go` lines on stdin."""

    proc: asyncio.subprocess.Process
    log_path: Path

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str], log_path: Path) -> Proc:
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=BENCH_DIR,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        return cls(proc, log_path)

    async def event(self, name: str, seconds: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while line := await self.proc.stdout.readline():
                    with contextlib.suppress(json.JSONDecodeError):
                        event: dict[str, Any] = json.loads(line)
                        if event.get("event") == name:
                            return event
        raise RuntimeError(f"no '{name}' from {self.proc.pid}; {self.log_tail()}")

    async def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()

    def tree(self) -> list[psutil.Process]:
        """This process and its descendants (taskiq and dramatiq run jobs in a child)."""
        import psutil  # noqa: PLC0415 - the bench extra

        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        return []

    async def stop(self) -> None:
        """SIGTERM (every CLI's graceful stop), then SIGKILL what is left of the tree."""
        import psutil  # noqa: PLC0415 - the bench extra

        tree = self.tree()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE_S):
                    await self.proc.wait()
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if self.proc.returncode is None:
            await self.proc.wait()

    def log_tail(self, lines: int = 8) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"log {self.log_path}: " + " | ".join(text.splitlines()[-lines:])


def tree_cpu(procs: Sequence[psutil.Process]) -> dict[int, float]:
    """User + system CPU seconds per pid."""
    import psutil  # noqa: PLC0415 - the bench extra

    cpu: dict[int, float] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            cpu[proc.pid] = times.user + times.system
    return cpu


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


# --- Redis counters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisCounters:
    calls: dict[str, int]
    reads: int
    cpu_s: float

    @classmethod
    async def read(cls, redis: Redis) -> RedisCounters:
        info = await redis.info("commandstats", "stats", "cpu")
        calls = {
            k.removeprefix("cmdstat_"): int(v["calls"])
            for k, v in info.items()
            if k.startswith("cmdstat_") and k != "cmdstat_info"
        }
        cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return cls(calls, int(info["total_reads_processed"]), cpu)


def redis_delta(
    before: RedisCounters, after: RedisCounters, jobs: int, *, polls: int = 0, incrs: int = 0
) -> dict[str, Any]:
    """Per job, the server-side work of the system: the harness's own polls (GET) and the
    job bodies' INCRs are taken out (the INFO calls never count)."""
    delta = {
        name: n - before.calls.get(name, 0)
        for name, n in sorted(after.calls.items())
        if n != before.calls.get(name, 0)
    }
    if polls:
        delta["get"] = delta.get("get", 0) - polls
    if incrs:
        delta["incr"] = delta.get("incr", 0) - incrs
    delta = {name: n for name, n in delta.items() if n}
    reads = after.reads - before.reads - 1 - polls  # the INFO that took `after`, the polls
    return {
        "redis_cmds_per_job": round(sum(delta.values()) / jobs, 3),
        "redis_reads_per_job": round(reads / jobs, 3),
        "redis_cpu_us_per_job": round((after.cpu_s - before.cpu_s) / jobs * 1e6, 1),
        "redis_cmds_by_command": delta,
    }


# --- the phases -------------------------------------------------------------------------------


@dataclass
class Bench:
    config: Config
    url: str
    redis: Redis
    workdir: Path

    def env_for(self, concurrency: int) -> dict[str, str]:
        pythonpath = os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")]))
        return {
            **os.environ,
            "BENCH_REDIS_URL": self.url,
            "BENCH_CONCURRENCY": str(concurrency),
            "PYTHONPATH": pythonpath,
        }

    async def client(self, system: System, mode: str, jobs: int, label: str) -> Proc:
        argv = system.client(self.url, mode, jobs, self.config.latency_interval_ms)
        return await Proc.start(argv, self.env_for(1), self.workdir / f"{system.name}-{label}.log")

    async def worker(self, system: System, concurrency: int, label: str) -> Proc:
        argv = system.worker(self.url, concurrency)
        log = self.workdir / f"{system.name}-{label}.log"
        return await Proc.start(argv, self.env_for(concurrency), log)

    async def counter(self) -> int:
        return int(await self.redis.get(DONE_KEY) or 0)

    async def enqueue(self, system: System, *, bulk: bool) -> dict[str, Any]:
        jobs = self.config.jobs
        await self.redis.flushall()
        client = await self.client(system, "bulk" if bulk else "single", jobs, "enqueue")
        try:
            await client.event("ready", START_TIMEOUT_S)
            before = await RedisCounters.read(self.redis)
            await client.go()
            done = await client.event("done", self.config.drain_timeout_s)
            after = await RedisCounters.read(self.redis)
        finally:
            await client.stop()
        return {
            "jobs_per_s": round(jobs / done["seconds"], 1),
            "client_cpu_us_per_job": round(done["cpu_s"] / jobs * 1e6, 1),
            **redis_delta(before, after, jobs),
        }

    async def fill(self, system: System, jobs: int) -> None:
        client = await self.client(system, "fill", jobs, "fill")
        try:
            await client.event("done", self.config.drain_timeout_s)
        finally:
            await client.stop()

    async def wait_count(self, target: int, seconds: float) -> tuple[int, int]:
        """Poll the counter until it reaches `target`: (its value then, polls made)."""
        deadline = time.monotonic() + seconds
        polls = 0
        while True:
            value = await self.counter()
            polls += 1
            if value >= target:
                return value, polls
            if time.monotonic() > deadline:
                raise RuntimeError(f"counter at {value} of {target} after {seconds:.0f} s")
            await asyncio.sleep(POLL_S)

    async def drain(self, system: System, concurrency: int) -> dict[str, Any]:
        """N jobs pre-enqueued, then the worker: timed from the first job seen done to the
        N-th, so its start-up (imports, connecting) is left out of rate and CPU."""
        jobs = self.config.jobs
        await self.redis.flushall()
        await self.fill(system, jobs)
        worker = await self.worker(system, concurrency, f"drain-c{concurrency}")
        try:
            first, _ = await self.wait_count(1, START_TIMEOUT_S)
            t0, procs = time.perf_counter(), worker.tree()
            cpu0, redis0 = tree_cpu(procs), await RedisCounters.read(self.redis)
            last, polls = await self.wait_count(jobs, self.config.drain_timeout_s)
            t1, cpu1 = time.perf_counter(), tree_cpu(procs)
            redis1 = await RedisCounters.read(self.redis)
            busy = max(cpu1, key=lambda pid: cpu1[pid] - cpu0.get(pid, 0.0))
            rss = peak_rss_mb(busy)
        finally:
            await worker.stop()
        ran = last - first
        cpu = sum(cpu1.values()) - sum(cpu0.values())
        return {
            "jobs_timed": ran,
            "seconds": round(t1 - t0, 4),
            "jobs_per_s": round(ran / (t1 - t0), 1),
            "worker_cpu_us_per_job": round(cpu / ran * 1e6, 1),
            "worker_processes": len(procs),
            "worker_rss_mb": round(rss, 1) if rss is not None else None,
            **redis_delta(redis0, redis1, ran, polls=polls, incrs=ran),
        }

    async def latency(self, system: System) -> dict[str, Any]:
        cfg = self.config
        await self.redis.flushall()
        worker = await self.worker(system, cfg.latency_concurrency, "latency")
        client = await self.client(system, "paced", cfg.latency_jobs, "latency-client")
        try:
            await client.event("ready", START_TIMEOUT_S)
            await client.go()
            await client.event("warm", START_TIMEOUT_S)
            await self.wait_count(LATENCY_WARMUP_JOBS, START_TIMEOUT_S)  # the worker is up
            await client.go()
            await client.event("done", cfg.latency_jobs * cfg.latency_interval_ms / 1000 + 60)
            await self.wait_count(LATENCY_WARMUP_JOBS + cfg.latency_jobs, 60)
            raw = await self.redis.lrange(LATENCY_KEY, 0, -1)
        finally:
            await client.stop()
            await worker.stop()
        values = sorted(float(v) for v in raw)
        return {
            "jobs": len(values),
            "p50_ms": round(percentile(values, 50), 3),
            "p99_ms": round(percentile(values, 99), 3),
            "max_ms": round(values[-1], 3),
        }

    async def one_pass(self, system: System) -> dict[str, dict[str, Any]]:
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("enqueue_single", lambda: self.enqueue(system, bulk=False))
        ]
        if system.bulk:
            steps.append(("enqueue_bulk", lambda: self.enqueue(system, bulk=True)))
        steps += [
            (f"drain_c{c}", lambda c=c: self.drain(system, c)) for c in self.config.concurrencies
        ]
        steps.append(("latency", lambda: self.latency(system)))
        phases: dict[str, dict[str, Any]] = {}
        for key, step in steps:
            started = time.perf_counter()
            try:
                phases[key] = await step()
            except Exception as exc:  # one failed phase must not lose the others
                phases[key] = {"error": f"{type(exc).__name__}: {exc}"}
            print(
                f"  {key:<15} {summary(phases[key])}  ({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
        return phases


def summary(phase: dict[str, Any]) -> str:
    if "error" in phase:
        return "ERROR " + str(phase["error"])[:300]
    if "p50_ms" in phase:
        return f"p50 {phase['p50_ms']:.2f} ms, p99 {phase['p99_ms']:.2f} ms"
    extra = (
        f", wrk {phase['worker_cpu_us_per_job']:.0f} us/job"
        if "worker_cpu_us_per_job" in phase
        else ""
    )
    return (
        f"{phase['jobs_per_s']:>8.0f} jobs/s, {phase['redis_cmds_per_job']:.2f} cmds/job, "
        f"redis {phase['redis_cpu_us_per_job']:.0f} us/job{extra}"
    )


# --- results --------------------------------------------------------------------------------


def load() -> float:
    return round(os.getloadavg()[0], 2)


def median_of_passes(passes: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per phase and numeric metric, the median over the passes that measured it (each metric
    on its own); `<metric>_all` keeps every pass's value in pass order. Other values (the
    commands by name) are the first such pass's."""
    merged: dict[str, dict[str, Any]] = {}
    for phase in dict.fromkeys(p for one in passes for p in one):
        runs = [one[phase] for one in passes if phase in one and "error" not in one[phase]]
        errors = [one[phase]["error"] for one in passes if "error" in one.get(phase, {})]
        out: dict[str, Any] = {"passes": len(runs)}
        if errors:
            out["errors"] = errors
        for key in dict.fromkeys(k for run in runs for k in run):
            values = [run[key] for run in runs if isinstance(run.get(key), int | float)]
            if values:
                out[key] = round(statistics.median(values), 3)
                out[f"{key}_all"] = values
            else:
                out[key] = next(run[key] for run in runs if key in run)
        merged[phase] = out
    return merged


def columns_for(concurrencies: Sequence[int]) -> list[tuple[str, str, str, bool]]:
    """The table's columns: (label, phase, metric, higher is better)."""
    drains = [(c, f"drain_c{c}") for c in concurrencies]
    cols = [
        ("enq 1x1/s", "enqueue_single", "jobs_per_s", True),
        ("enq bulk/s", "enqueue_bulk", "jobs_per_s", True),
    ]
    cols += [(f"drain c{c}/s", phase, "jobs_per_s", True) for c, phase in drains]
    cols += [("lat p50 ms", "latency", "p50_ms", False), ("lat p99 ms", "latency", "p99_ms", False)]
    for label, key in (
        ("wrk CPU µs/job", "worker_cpu_us_per_job"),
        ("Redis CPU µs/job", "redis_cpu_us_per_job"),
        ("Redis cmds/job", "redis_cmds_per_job"),
    ):
        cols += [(f"{label} c{c}", phase, key, False) for c, phase in drains]
    cols += [
        ("Redis cmds/enq", "enqueue_single", "redis_cmds_per_job", False),
        ("worker RSS MB", "worker", "rss_mb", False),
    ]
    return cols


def value(results: dict[str, Any], system: str, phase: str, key: str) -> float | None:
    found = results.get(system, {}).get(phase, {}).get(key)
    return float(found) if isinstance(found, int | float) else None


def fmt(number: float | None) -> str:
    if number is None:
        return "-"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    return f"{number:.1f}" if abs(number) >= 10 else f"{number:.2f}"


def absolute_rows(results: dict[str, Any], config: Config) -> list[list[str]]:
    cols = columns_for(config.concurrencies)
    rows = [["system", *(label for label, *_ in cols)]]
    rows += [
        [SYSTEMS[name].label, *(fmt(value(results, name, p, k)) for _, p, k, _ in cols)]
        for name in config.systems
    ]
    return rows


def ratios(results: dict[str, Any], config: Config) -> dict[str, dict[str, float | None]]:
    """Each system's median / BullMQ's median, per column (None where either is missing)."""
    table: dict[str, dict[str, float | None]] = {}
    for name in config.systems:
        cells: dict[str, float | None] = {}
        for label, phase, key, _ in columns_for(config.concurrencies):
            mine, base = value(results, name, phase, key), value(results, BASELINE, phase, key)
            cells[label] = round(mine / base, 3) if mine is not None and base else None
        table[name] = cells
    return table


def ratio_rows(results: dict[str, Any], config: Config) -> list[list[str]]:
    cols = columns_for(config.concurrencies)
    rows = [["vs BullMQ", *(f"{label} {'↑' if up else '↓'}" for label, _, _, up in cols)]]
    table = ratios(results, config)
    for name in config.systems:
        cells = table[name]
        rows.append(
            [
                SYSTEMS[name].label,
                *(
                    f"{cells[label]:.2f}x" if cells[label] is not None else "-"
                    for label, *_ in cols
                ),
            ]
        )
    return rows


def readme_rows(results: dict[str, Any], config: Config) -> list[list[str]]:
    """One table of "value (ratio to BullMQ)" cells, the c5 / c50 and p50 / p99 pairs in one
    column each: the README's."""
    cols = columns_for(config.concurrencies)
    groups: dict[str, list[str]] = {}
    for label, *_ in cols:  # "wrk CPU µs/job c5" and "... c50" -> "wrk CPU µs/job c5 / c50"
        head, _, tail = label.rpartition(" ")
        key = head if tail.startswith("c") and tail[1:].isdigit() else label
        key = "lat p50 / p99 ms" if label.startswith("lat ") else key
        groups.setdefault(key, []).append(label)
    table = ratios(results, config)
    rows = [["system"]]
    for key, labels in groups.items():
        suffix = " / ".join(label.rpartition(" ")[2] for label in labels)
        paired = len(labels) > 1 and not key.startswith("lat ")
        rows[0].append(f"{key} {suffix}" if paired else key)
    spec = {label: (phase, metric) for label, phase, metric, _ in cols}
    for name in config.systems:
        row = [SYSTEMS[name].label]
        for labels in groups.values():
            values = [fmt(value(results, name, *spec[label])) for label in labels]
            cells = [table[name][label] for label in labels]
            shown = " / ".join(values)
            if name != BASELINE and any(c is not None for c in cells):
                shown += " (" + " / ".join(f"{c:.2f}x" if c else "-" for c in cells) + ")"
            row.append("-" if set(values) == {"-"} else shown)
        rows.append(row)
    return rows


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def machine(redis_version: str) -> dict[str, Any]:
    packages = {}
    for pkg in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            packages[pkg] = importlib.metadata.version(pkg)
    with contextlib.suppress(OSError, json.JSONDecodeError):
        lock = json.loads((NODE_DIR / "package-lock.json").read_text())
        packages["bullmq"] = lock["packages"]["node_modules/bullmq"]["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "redis_server": redis_version,
        "packages": packages,
    }


async def measure(config: Config, url: str, workdir: Path) -> dict[str, Any]:
    passes: dict[str, list[dict[str, dict[str, Any]]]] = {name: [] for name in config.systems}
    loads = [load()]
    async with Redis.from_url(url) as redis:
        version = str((await redis.info("server"))["redis_version"])
        print(f"redis-server {version} at {url}; load average {loads[0]}", flush=True)
        bench = Bench(config, url, redis, workdir)
        for n in range(config.repeat):
            for name in config.systems:
                print(f"{name} (pass {n + 1}/{config.repeat}, load {load()}):", flush=True)
                passes[name].append(await bench.one_pass(SYSTEMS[name]))
            loads.append(load())
    results = {name: with_peak_rss(median_of_passes(p)) for name, p in passes.items()}
    by_pass = [
        ratios({name: with_peak_rss(dict(p[n])) for name, p in passes.items()}, config)
        for n in range(config.repeat)
    ]
    return {
        "redis_version": version,
        "load_average": loads,
        "results": results,
        "ratios_by_pass": by_pass,
    }


def with_peak_rss(phases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Adds `worker.rss_mb`: the peak over the drains (c50 holds more in flight)."""
    rss = [v["worker_rss_mb"] for v in phases.values() if v.get("worker_rss_mb") is not None]
    phases["worker"] = {"rss_mb": max(rss)} if rss else {}
    return phases


@contextlib.contextmanager
def private_server() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="hub-compare-") as tmp:
        workdir = Path(tmp)
        with private_redis(workdir) as server:
            yield server.url, workdir


def print_tables(config: Config, results: dict[str, Any], headline: str) -> None:
    print(f"\n{headline}\n")
    for rows in (absolute_rows, ratio_rows, readme_rows):
        print(markdown(rows(results, config)), end="\n\n")
    for name in config.systems:
        for phase, values in results.get(name, {}).items():
            for error in values.get("errors", []):
                print(f"note: {name} {phase}: {error}")


def reprint(path: Path) -> int:
    """`--tables PATH`: the tables of a saved run, without running anything."""
    try:
        document = json.loads(path.read_text())
        saved = document["config"]
        config = Config(
            jobs=saved["jobs"],
            concurrencies=tuple(saved["concurrencies"]),
            latency_jobs=saved["latency_jobs"],
            latency_interval_ms=saved["latency_interval_ms"],
            latency_concurrency=saved["latency_concurrency"],
            repeat=saved["repeat"],
            systems=tuple(saved["systems"]),
        )
        loads = document["load_average_1m"]
        results = document["systems"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {path} is not a compare.py result ({type(exc).__name__})", file=sys.stderr)
        return 2
    print_tables(config, results, headline(document["date"], config, loads))
    return 0


def headline(date: str, config: Config, loads: Sequence[float]) -> str:
    return (
        f"{date}: medians of {config.repeat} interleaved pass(es), {config.jobs:,} jobs per "
        f"phase; load average (1 min) {min(loads):.2f}-{max(loads):.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    config, out, tables = parse_args(argv)
    if tables is not None:
        return reprint(tables)
    try:
        check_prerequisites(config)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with private_server() as (url, workdir):
        measured = asyncio.run(measure(config, url, workdir))
    results = measured["results"]
    runtime = round(time.perf_counter() - started, 1)
    loads = measured["load_average"]
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print_tables(config, results, headline(date, config, loads) + f"; {runtime} s")
    document = {
        "date": date,
        "machine": machine(measured["redis_version"]),
        "config": {
            **config.__dict__,
            "concurrencies": list(config.concurrencies),
            "systems": list(config.systems),
            "baseline": BASELINE,
        },
        "load_average_1m": loads,
        "runtime_s": runtime,
        "workers": {name: SYSTEMS[name].runs for name in config.systems},
        "ratios": ratios(results, config),
        "ratios_by_pass": measured["ratios_by_pass"],
        "systems": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
