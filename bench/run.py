"""Benchmark hub_scheduler's queue against taskiq-redis, on a private redis-server.

usage: python bench/run.py [--jobs 20000] [--quick] [--out bench/results/latest.json]
                           [--systems taskiq-list,taskiq-stream,hub]

Starts its own redis-server on a free 127.0.0.1 port (no persistence, in a temp dir), measures
per system: enqueue throughput (one by one, and bulk), drain throughput of one worker
subprocess at each concurrency, enqueue-to-start latency at low load, Redis commands per job
(server side, INFO commandstats) and the worker's peak RSS. Prints a table, writes JSON.
See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from systems import SYSTEMS, BenchSystem, Payload, make_system

BENCH_DIR = Path(__file__).resolve().parent
WORKER_SCRIPT = BENCH_DIR / "worker_proc.py"
BASELINE = "taskiq-stream"
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0
LATENCY_WARMUP_JOBS = 20
WARMUP_JOBS = 5_000


@dataclass(frozen=True)
class Config:
    jobs: int
    concurrencies: tuple[int, ...]
    latency_jobs: int
    latency_interval_s: float
    latency_concurrency: int
    repeat: int = 1

    @property
    def drain_timeout_s(self) -> float:
        """Upper bound for one drain: generous, but bounded (100 jobs/s would be a bug)."""
        return max(60.0, self.jobs / 100)


# --- the private redis-server -------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[RedisServer]:
    """Run our own redis-server (no RDB, no AOF) on a free loopback port; stop it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
                "--logfile", str(workdir / "redis.log")]  # fmt: skip
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)  # noqa: S603 (fixed argv)
        if _wait_for_ping(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        raise SystemExit(f"redis-server did not start; see {workdir / 'redis.log'}")
    try:
        yield RedisServer(url=f"redis://127.0.0.1:{port}/0", pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_ping(port: int, proc: subprocess.Popen[bytes]) -> bool:
    for _ in range(100):
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return True
        time.sleep(0.05)
    return False


# --- server-side counters -----------------------------------------------------------------


@dataclass(frozen=True)
class ServerCounters:
    """Cumulative counters of the redis-server, read with one INFO command."""

    calls: dict[str, int]  # per command, from INFO commandstats (our INFO left out)
    reads: int  # read events on client sockets (total_reads_processed): ~ round trips
    cpu_s: float  # redis-server user + system CPU

    @classmethod
    async def read(cls, redis: Redis) -> ServerCounters:
        info = await redis.info("commandstats", "stats", "cpu")
        calls = {
            key.removeprefix("cmdstat_"): int(value["calls"])
            for key, value in info.items()
            if key.startswith("cmdstat_") and key != "cmdstat_info"
        }
        cpu_s = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return cls(calls, int(info["total_reads_processed"]), cpu_s)

    def since(self, before: ServerCounters, jobs: int) -> dict[str, Any]:
        delta = {
            name: calls - before.calls.get(name, 0)
            for name, calls in sorted(self.calls.items())
            if calls != before.calls.get(name, 0)
        }
        commands = sum(delta.values())
        reads = self.reads - before.reads - 1  # the read of the INFO that took `self`
        return {
            "redis_cmds_per_job": round(commands / jobs, 4),
            "redis_reads_per_job": round(reads / jobs, 4),
            "redis_cpu_us_per_job": round((self.cpu_s - before.cpu_s) / jobs * 1e6, 2),
            "redis_cmds_total": commands,
            "redis_reads_total": reads,
            "redis_cmds_by_command": delta,
        }


# --- the worker subprocess ----------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A running `worker_proc.py`; see its docstring for the stdin/stdout protocol."""

    proc: asyncio.subprocess.Process
    log_path: Path

    @classmethod
    async def start(
        cls, *, system: str, redis: RedisServer, concurrency: int, jobs: int,
        worker_timeout_s: float, log_path: Path,
    ) -> WorkerProcess:  # fmt: skip
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(WORKER_SCRIPT), "--system", system,
                "--redis-url", redis.url, "--concurrency", str(concurrency),
                "--jobs", str(jobs), "--timeout", str(worker_timeout_s),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        return cls(proc, log_path)

    async def wait_event(self, name: str, seconds: float) -> dict[str, Any]:
        """The next stdout event called `name`; RuntimeError if none comes within `seconds`."""
        assert self.proc.stdout is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                # bounded: the stream ends when the worker exits
                while line := await self.proc.stdout.readline():
                    with contextlib.suppress(json.JSONDecodeError):
                        event: dict[str, Any] = json.loads(line)
                        if event.get("event") == name:
                            return event
        raise RuntimeError(f"worker exited or timed out before '{name}'; {self.log_tail()}")

    async def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()

    async def wait_exit(self) -> None:
        try:
            async with asyncio.timeout(EXIT_TIMEOUT_S):
                await self.proc.wait()
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"worker log {self.log_path}:\n{tail}" if tail else "worker log is empty"


# --- the measurements ---------------------------------------------------------------------


@dataclass
class Bench:
    """Runs every measurement of one system against the private Redis."""

    system: str
    server: RedisServer
    admin: Redis
    config: Config
    workdir: Path

    async def fresh_client(self) -> BenchSystem:
        """FLUSHALL the private server, then open a client (which re-declares its queue)."""
        await self.admin.flushall()
        client = make_system(self.system, self.server.url)
        await client.open()
        return client

    async def warm_up(self) -> None:
        """Untimed enqueue traffic, so no phase pays first-use costs of the harness process
        and of redis-server's allocator (without it the run's first phase was ~25 % slower)."""
        client = await self.fresh_client()
        try:
            for i in range(min(self.config.jobs, WARMUP_JOBS)):
                await client.enqueue_one({"i": i})
        finally:
            await client.close()

    async def enqueue(self, *, bulk: bool) -> dict[str, Any]:
        jobs = self.config.jobs
        payloads: list[Payload] = [{"i": i} for i in range(jobs)]
        client = await self.fresh_client()
        try:
            before = await ServerCounters.read(self.admin)
            started = time.perf_counter()
            if bulk:
                await client.enqueue_bulk(payloads)
            else:
                for payload in payloads:
                    await client.enqueue_one(payload)
            seconds = time.perf_counter() - started
            after = await ServerCounters.read(self.admin)
        finally:
            await client.close()
        method = client.enqueue_bulk_method if bulk else client.enqueue_one_method
        return {"jobs": jobs, "method": method, "seconds": round(seconds, 4),
                "jobs_per_s": round(jobs / seconds, 1), **after.since(before, jobs)}  # fmt: skip

    async def drain(self, concurrency: int) -> dict[str, Any]:
        jobs = self.config.jobs
        client = await self.fresh_client()
        try:
            await client.enqueue_bulk([{"i": i} for i in range(jobs)])
        finally:
            await client.close()
        worker = await self.start_worker(concurrency, jobs, f"drain-c{concurrency}")
        try:
            await worker.wait_event("ready", READY_TIMEOUT_S)
            before = await ServerCounters.read(self.admin)
            started = time.perf_counter()
            await worker.go()
            done = await worker.wait_event("done", self.config.drain_timeout_s + 40)
            harness_s = time.perf_counter() - started
            await worker.wait_exit()
            after = await ServerCounters.read(self.admin)
        finally:
            await worker.kill()
        self.check_done(done, worker)
        return {
            "jobs": done["jobs"],
            "concurrency": concurrency,
            "seconds": round(done["seconds"], 4),
            "jobs_per_s": round(done["jobs"] / done["seconds"], 1),
            "harness_wall_s": round(harness_s, 4),
            "worker_cpu_s": round(done["worker_cpu_s"], 3),
            "worker_cpu_us_per_job": round(done["worker_cpu_s"] / done["jobs"] * 1e6, 1),
            "worker_peak_rss_mb": round(done["peak_rss_mb"], 1),
            "worker_stop_hung": done["stop_hung"],
            **after.since(before, done["jobs"]),
        }

    async def latency(self) -> dict[str, Any]:
        cfg = self.config
        await self.admin.flushall()
        target = LATENCY_WARMUP_JOBS + cfg.latency_jobs
        worker = await self.start_worker(cfg.latency_concurrency, target, "latency")
        client = make_system(self.system, self.server.url)
        try:
            await worker.wait_event("ready", READY_TIMEOUT_S)
            await client.open()  # after the worker: it declares the queue on the empty server
            await worker.go()
            # Warm-up jobs (no timestamp, so not measured) pay the first-job costs of both
            # sides (connections, taskiq's per-task setup); then a pause to drain any backlog.
            await self.paced_enqueue(client, LATENCY_WARMUP_JOBS, timestamp=False)
            await asyncio.sleep(0.2)
            await self.paced_enqueue(client, cfg.latency_jobs, timestamp=True)
            done = await worker.wait_event("done", 60)
            await worker.wait_exit()
        finally:
            await client.close()
            await worker.kill()
        self.check_done(done, worker)
        latencies = sorted(done["latencies_ms"])
        return {
            "jobs": len(latencies),
            "warmup_jobs": LATENCY_WARMUP_JOBS,
            "concurrency": cfg.latency_concurrency,
            "interval_ms": cfg.latency_interval_s * 1000,
            "p50_ms": round(percentile(latencies, 50), 3),
            "p90_ms": round(percentile(latencies, 90), 3),
            "p99_ms": round(percentile(latencies, 99), 3),
            "max_ms": round(latencies[-1], 3),
            "worker_peak_rss_mb": round(done["peak_rss_mb"], 1),
            "worker_stop_hung": done["stop_hung"],
        }

    async def paced_enqueue(self, client: BenchSystem, jobs: int, *, timestamp: bool) -> None:
        """Enqueue one job every `latency_interval_s` (on a fixed schedule, not after each)."""
        loop = asyncio.get_running_loop()
        first = loop.time()
        for i in range(jobs):
            await asyncio.sleep(max(0.0, first + i * self.config.latency_interval_s - loop.time()))
            payload: Payload = {"i": i, "t": time.time()} if timestamp else {"i": i}
            await client.enqueue_one(payload)

    async def start_worker(self, concurrency: int, jobs: int, label: str) -> WorkerProcess:
        log_path = self.workdir / f"worker-{self.system}-{label}.log"
        return await WorkerProcess.start(
            system=self.system,
            redis=self.server,
            concurrency=concurrency,
            jobs=jobs,
            worker_timeout_s=self.config.drain_timeout_s,
            log_path=log_path,
        )

    @staticmethod
    def check_done(done: dict[str, Any], worker: WorkerProcess) -> None:
        if done["timed_out"] or done["error"] or done["jobs"] != done["target"]:
            raise RuntimeError(
                f"worker ran {done['jobs']} of {done['target']} jobs (timed out: "
                f"{done['timed_out']}, error: {done['error']}); {worker.log_tail()}"
            )


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def bench_system(bench: Bench) -> dict[str, dict[str, Any]]:
    """One pass over every phase; a failed phase is recorded as {"error": ...}."""
    phases: dict[str, dict[str, Any]] = {}
    try:
        await bench.warm_up()
    except Exception as exc:  # the phases will report their own errors
        print(f"  warm-up failed: {type(exc).__name__}: {exc}")
    steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        ("enqueue_single", lambda: bench.enqueue(bulk=False)),
        ("enqueue_bulk", lambda: bench.enqueue(bulk=True)),
        *((f"drain_c{c}", lambda c=c: bench.drain(c)) for c in bench.config.concurrencies),
        ("latency", bench.latency),
    ]
    for key, step in steps:
        started = time.perf_counter()
        try:
            phases[key] = await step()
        except Exception as exc:  # one failed phase must not lose the others
            phases[key] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  {key:<15} {summary(phases[key])}  ({time.perf_counter() - started:.1f} s)")
    return phases


def median_pass(passes: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per phase, the pass with the median headline number, plus every pass's number."""
    merged: dict[str, Any] = {}
    for key in passes[0]:
        runs = [p[key] for p in passes if "error" not in p[key]]
        if not runs:
            merged[key] = passes[0][key]
            continue
        headline = "p50_ms" if key == "latency" else "jobs_per_s"
        runs.sort(key=lambda run: float(run[headline]))
        merged[key] = {**runs[(len(runs) - 1) // 2], f"{headline}_all": [r[headline] for r in runs]}
        if any("worker_stop_hung" in run for run in runs):
            merged[key]["worker_stop_hung_passes"] = sum(r["worker_stop_hung"] for r in runs)
        if len(runs) < len(passes):
            merged[key]["failed_passes"] = len(passes) - len(runs)
    return merged


def summary(phase: dict[str, Any]) -> str:
    if "error" in phase:
        return "ERROR " + str(phase["error"]).splitlines()[0]
    if "p50_ms" in phase:
        return f"p50 {phase['p50_ms']:.2f} ms, p99 {phase['p99_ms']:.2f} ms"
    return (f"{phase['jobs_per_s']:>9.0f} jobs/s, {phase['redis_cmds_per_job']:.2f} cmds/job, "
            f"{phase['redis_reads_per_job']:.2f} reads/job")  # fmt: skip


# --- report -------------------------------------------------------------------------------


def metric(result: dict[str, Any], phase: str, key: str) -> float | None:
    value = result.get(phase, {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def measured(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: result for name, result in results.items() if result["status"] == "ok"}


def throughput_rows(results: dict[str, dict[str, Any]], config: Config) -> list[list[str]]:
    drains = [f"drain_c{c}" for c in config.concurrencies]
    rows = [["system", "enq 1x1/s", "enq bulk/s", *(f"drain c{c}/s" for c in config.concurrencies),
             *(f"wrk cpu us c{c}" for c in config.concurrencies),
             "lat p50 ms", "lat p99 ms", "worker RSS MB"]]  # fmt: skip
    for name, result in measured(results).items():
        rss = [metric(result, d, "worker_peak_rss_mb") for d in drains]
        values = [
            metric(result, "enqueue_single", "jobs_per_s"),
            metric(result, "enqueue_bulk", "jobs_per_s"),
            *(metric(result, d, "jobs_per_s") for d in drains),
            *(metric(result, d, "worker_cpu_us_per_job") for d in drains),
            metric(result, "latency", "p50_ms"),
            metric(result, "latency", "p99_ms"),
            max((r for r in rss if r is not None), default=None),
        ]
        rows.append([name, *(fmt(v) for v in values)])
    return rows


def traffic_rows(results: dict[str, dict[str, Any]], config: Config) -> list[list[str]]:
    phases = [("enqueue_single", "enq"), *((f"drain_c{c}", f"c{c}") for c in config.concurrencies)]
    header = ["redis per job"]
    for _, label in phases:
        header += [f"{label} cmds", f"{label} reads"]
    header += [f"{label} cpu us" for _, label in phases]
    rows = [header]
    for name, result in measured(results).items():
        cells = [name]
        for phase, _ in phases:
            cells += [fmt(metric(result, phase, "redis_cmds_per_job")),
                      fmt(metric(result, phase, "redis_reads_per_job"))]  # fmt: skip
        cells += [fmt(metric(result, phase, "redis_cpu_us_per_job")) for phase, _ in phases]
        rows.append(cells)
    return rows


def ratio_rows(results: dict[str, dict[str, Any]], config: Config) -> list[list[str]]:
    phases = ["enqueue_single", "enqueue_bulk", *(f"drain_c{c}" for c in config.concurrencies)]
    rows = [[f"jobs/s vs {BASELINE}", "enq 1x1", "enq bulk",
             *(f"drain c{c}" for c in config.concurrencies)]]  # fmt: skip
    base = results.get(BASELINE, {})
    for name, result in measured(results).items():
        cells = [name]
        for phase in phases:
            mine, theirs = metric(result, phase, "jobs_per_s"), metric(base, phase, "jobs_per_s")
            cells.append(f"{mine / theirs:.2f}x" if mine and theirs else "-")
        rows.append(cells)
    return rows


def notes(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name, result in results.items():
        if result["status"] != "ok":
            lines.append(f"{name}: skipped ({result['note']})")
            continue
        for phase, values in result.items():
            hung = values.get("worker_stop_hung_passes") if isinstance(values, dict) else None
            if hung:
                lines.append(f"{name} {phase}: the worker did not stop after its last job in "
                             f"{hung} pass(es) (numbers are still valid; see README)")  # fmt: skip
    return lines


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def render(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) if i == 0 else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=False))]  # fmt: skip
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def machine_info(redis_version: str) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server": redis_version,
        "packages": {
            pkg: importlib.metadata.version(pkg)
            for pkg in ("taskiq", "taskiq-redis", "redis", "hub-scheduler")
        },
    }


# --- main ---------------------------------------------------------------------------------


async def measure_all(
    config: Config, systems: list[str], server: RedisServer, workdir: Path
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Benchmark each system (`config.repeat` passes, systems interleaved); returns the
    redis-server version and the results."""
    results: dict[str, dict[str, Any]] = {}
    passes: dict[str, list[dict[str, dict[str, Any]]]] = {}
    async with Redis.from_url(server.url) as admin:
        version = str((await admin.info("server"))["redis_version"])
        print(f"redis-server {version} (pid {server.pid}) at {server.url}")
        for name in systems:
            reason = SYSTEMS[name].unavailable_reason()
            if reason is not None:
                print(f"{name}: SKIPPED ({reason})")
                results[name] = {"status": "skipped", "note": reason}
        runnable = [name for name in systems if name not in results]
        for n in range(config.repeat):
            for name in runnable:
                print(f"{name} (pass {n + 1}/{config.repeat}):")
                bench = Bench(name, server, admin, config, workdir)
                passes.setdefault(name, []).append(await bench_system(bench))
        await admin.flushall()
    for name in runnable:
        worker = SYSTEMS[name].worker_method
        results[name] = {"status": "ok", "worker": worker, **median_pass(passes[name])}
    return version, {name: results[name] for name in systems}


def report(config: Config, results: dict[str, dict[str, Any]]) -> None:
    for rows in (throughput_rows(results, config), traffic_rows(results, config),
                 ratio_rows(results, config)):  # fmt: skip
        if len(rows) > 1:
            print()
            print(render(rows))
    for line in notes(results):
        print(f"note: {line}")


def parse_args(argv: list[str] | None = None) -> tuple[Config, list[str], Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs per enqueue/drain phase (default 20000)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 5000 jobs, 200 latency jobs (unless given)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.json")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--concurrency", default="5,50", help="drain concurrencies, comma list")
    parser.add_argument("--latency-jobs", type=int)
    parser.add_argument("--latency-interval-ms", type=float, default=2.0)
    parser.add_argument("--latency-concurrency", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1,
                        help="passes per system; the median pass is reported")  # fmt: skip
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {sorted(SYSTEMS)}")
    config = Config(
        jobs=args.jobs or (5_000 if args.quick else 20_000),
        concurrencies=tuple(int(c) for c in args.concurrency.split(",")),
        latency_jobs=args.latency_jobs or (200 if args.quick else 500),
        latency_interval_s=args.latency_interval_ms / 1000,
        latency_concurrency=args.latency_concurrency,
        repeat=args.repeat,
    )
    if min(config.jobs, config.latency_jobs, config.repeat, *config.concurrencies) < 1:
        parser.error("--jobs, --latency-jobs, --concurrency and --repeat must be positive")
    return config, systems, args.out


def main() -> None:
    config, systems, out = parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp, private_redis(Path(tmp)) as srv:
        redis_version, results = asyncio.run(measure_all(config, systems, srv, Path(tmp)))
    runtime_s = round(time.perf_counter() - started, 1)
    report(config, results)
    document = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(redis_version),
        "config": {
            "jobs": config.jobs,
            "concurrencies": list(config.concurrencies),
            "latency_jobs": config.latency_jobs,
            "latency_warmup_jobs": LATENCY_WARMUP_JOBS,
            "latency_interval_ms": config.latency_interval_s * 1000,
            "latency_concurrency": config.latency_concurrency,
            "repeat": config.repeat,
            "baseline": BASELINE,
        },
        "runtime_s": runtime_s,
        "systems": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {out}; total runtime {runtime_s} s")


if __name__ == "__main__":
    main()
