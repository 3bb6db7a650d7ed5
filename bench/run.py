"""Benchmark hub_scheduler's queue against its peers, on a private Redis or PostgreSQL.

usage: python bench/run.py [--jobs 20000] [--quick] [--out bench/results/latest.json]
                           [--backend redis|postgres] [--systems taskiq-list,taskiq-stream,hub]
                           [--postgres-url URL] [--history N]

Starts its own redis-server on a free 127.0.0.1 port (no persistence, in a temp dir) for the
Redis systems, and its own PostgreSQL cluster (or a private database on --postgres-url) for the
PostgreSQL systems; measures per system: enqueue throughput (one by one, and bulk), drain
throughput of one worker subprocess at each concurrency, enqueue-to-start latency at low load,
server-side work per job (Redis: INFO commandstats; PostgreSQL: pg_stat_statements,
pg_stat_database, WAL) and the worker's CPU and peak RSS. Prints tables, writes JSON.
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
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio import Redis
from systems import SYSTEMS, BenchSystem, Payload, make_system

if TYPE_CHECKING:
    from pg import PgServer

BENCH_DIR = Path(__file__).resolve().parent
WORKER_SCRIPT = BENCH_DIR / "worker_proc.py"
BASELINE = "taskiq-stream"  # the Redis systems' ratios
PG_PEERS = ("procrastinate", "pgqueuer")  # the PostgreSQL systems': the faster, per phase
DEFAULT_SYSTEMS = {
    "redis": ["taskiq-list", "taskiq-stream", "hub"],
    "postgres": ["procrastinate", "pgqueuer", "hub-postgres"],
}
# Gap between latency jobs per service: 2 ms (500 jobs/s) is low load for the Redis systems but
# above procrastinate's drain rate on 2 shared cores (~110-330 jobs/s), and even 10 ms turned
# its latency into backlog (p50 560 ms in one pass): 20 ms, 50 jobs/s, is low load for all.
LATENCY_INTERVAL_MS = {"redis": 2.0, "postgres": 20.0}
HISTORY_SUFFIX = "+history"
HISTORY_CHUNK = 10_000  # runs per enqueue_bulk when --history fills through the API
HISTORY_FILL_CONCURRENCY = 50
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0
LATENCY_WARMUP_JOBS = 20
WARMUP_JOBS = 5_000


@dataclass(frozen=True)
class Config:
    jobs: int
    concurrencies: tuple[int, ...]
    latency_jobs: int
    latency_interval_s: float | None  # None: LATENCY_INTERVAL_MS of the system's service
    latency_concurrency: int
    repeat: int = 1
    history: int = 0

    def latency_interval_for(self, service: str) -> float:
        if self.latency_interval_s is not None:
            return self.latency_interval_s
        return LATENCY_INTERVAL_MS[service] / 1000

    @property
    def drain_timeout_s(self) -> float:
        """Upper bound for one drain: generous, but bounded. 20 jobs/s: procrastinate drains
        at ~110-140 jobs/s on the 2 shared cores when other test suites run."""
        return max(120.0, self.jobs / 20)


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
        cls, *, system: str, url: str, concurrency: int, jobs: int,
        worker_timeout_s: float, log_path: Path,
    ) -> WorkerProcess:  # fmt: skip
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(WORKER_SCRIPT), "--system", system,
                "--url", url, "--concurrency", str(concurrency),
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


# --- the stores -----------------------------------------------------------------------------


class Counters(Protocol):
    def since(self, before: Any, jobs: int) -> dict[str, Any]: ...


class Store(Protocol):
    """Where a system keeps its queue: the private Redis, or the private PostgreSQL database."""

    service: str

    @property
    def url(self) -> str: ...

    async def reset(self, *, template: str | None = None) -> None:
        """Empty it (PostgreSQL: recreate the database, from `template` when given)."""

    async def settle(self) -> None:
        """Wait until counters of clients that just disconnected are visible."""

    async def counters(self) -> Counters: ...


@dataclass
class RedisStore:
    server: RedisServer
    admin: Redis

    service = "redis"

    @property
    def url(self) -> str:
        return self.server.url

    async def reset(self, *, template: str | None = None) -> None:
        assert template is None, "no templates on Redis"
        await self.admin.flushall()

    async def settle(self) -> None:
        """INFO is current: nothing to wait for."""

    async def counters(self) -> ServerCounters:
        return await ServerCounters.read(self.admin)


# --- the measurements ---------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One row of the results: a system, or a system measured with a pre-filled history."""

    key: str
    system: str
    history: int = 0  # finished runs in the store before each drain (only drains are run)


@dataclass
class Bench:
    """Runs every measurement of one entry against its store."""

    entry: Entry
    store: Store
    config: Config
    workdir: Path
    template: str | None = None  # database to clone for each phase (history entries)

    @property
    def system(self) -> str:
        return self.entry.system

    async def fresh_store(self) -> None:
        """Empty the store and let the system create its schema (or clone the history)."""
        if self.template is not None:
            await self.store.reset(template=self.template)
        else:
            await self.store.reset()
            await SYSTEMS[self.system].install(self.store.url)
        await self.store.settle()

    async def fresh_client(self) -> BenchSystem:
        """A client on an empty store (the Redis systems re-declare their queue on open)."""
        await self.fresh_store()
        client = make_system(self.system, self.store.url)
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
            before = await self.store.counters()
            started = time.perf_counter()
            if bulk:
                await client.enqueue_bulk(payloads)
            else:
                for payload in payloads:
                    await client.enqueue_one(payload)
            seconds = time.perf_counter() - started
        finally:
            await client.close()
        await self.store.settle()
        after = await self.store.counters()
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
        await self.store.settle()
        worker = await self.start_worker(concurrency, jobs, f"drain-c{concurrency}")
        try:
            await worker.wait_event("ready", READY_TIMEOUT_S)
            before = await self.store.counters()
            started = time.perf_counter()
            await worker.go()
            done = await worker.wait_event("done", self.config.drain_timeout_s + 40)
            harness_s = time.perf_counter() - started
            await worker.wait_exit()
        finally:
            await worker.kill()
        await self.store.settle()
        after = await self.store.counters()
        self.check_done(done, worker)
        return {
            "jobs": done["jobs"],
            "concurrency": concurrency,
            **({"history_runs": self.entry.history} if self.entry.history else {}),
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
        await self.fresh_store()
        target = LATENCY_WARMUP_JOBS + cfg.latency_jobs
        worker = await self.start_worker(cfg.latency_concurrency, target, "latency")
        client = make_system(self.system, self.store.url)
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
            "interval_ms": cfg.latency_interval_for(self.store.service) * 1000,
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
        interval = self.config.latency_interval_for(self.store.service)
        first = loop.time()
        for i in range(jobs):
            await asyncio.sleep(max(0.0, first + i * interval - loop.time()))
            payload: Payload = {"i": i, "t": time.time()} if timestamp else {"i": i}
            await client.enqueue_one(payload)

    async def start_worker(self, concurrency: int, jobs: int, label: str) -> WorkerProcess:
        log_path = self.workdir / f"worker-{self.entry.key}-{label}.log"
        return await WorkerProcess.start(
            system=self.system,
            url=self.store.url,
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
    drains: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        (f"drain_c{c}", lambda c=c: bench.drain(c)) for c in bench.config.concurrencies
    ]
    if bench.entry.history:  # the same system's plain entry runs just before: it is warm
        steps = drains
    else:
        try:
            await bench.warm_up()
        except Exception as exc:  # the phases will report their own errors
            print(f"  warm-up failed: {type(exc).__name__}: {exc}")
        steps = [
            ("enqueue_single", lambda: bench.enqueue(bulk=False)),
            ("enqueue_bulk", lambda: bench.enqueue(bulk=True)),
            *drains,
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
    rate = f"{phase['jobs_per_s']:>9.0f} jobs/s"
    if "redis_cmds_per_job" in phase:
        return (f"{rate}, {phase['redis_cmds_per_job']:.2f} cmds/job, "
                f"{phase['redis_reads_per_job']:.2f} reads/job")  # fmt: skip
    stmts = phase.get("pg_stmts_per_job")
    return (
        rate
        + (f", {stmts:.2f} stmts/job" if stmts is not None else "")
        + (f", {phase['pg_xacts_per_job']:.2f} xacts/job")
    )


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


def of_service(results: dict[str, dict[str, Any]], service: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in measured(results).items() if r["service"] == service}


def traffic_rows(results: dict[str, dict[str, Any]], config: Config) -> list[list[str]]:
    phases = [("enqueue_single", "enq"), *((f"drain_c{c}", f"c{c}") for c in config.concurrencies)]
    header = ["redis per job"]
    for _, label in phases:
        header += [f"{label} cmds", f"{label} reads"]
    header += [f"{label} cpu us" for _, label in phases]
    rows = [header]
    for name, result in of_service(results, "redis").items():
        cells = [name]
        for phase, _ in phases:
            cells += [fmt(metric(result, phase, "redis_cmds_per_job")),
                      fmt(metric(result, phase, "redis_reads_per_job"))]  # fmt: skip
        cells += [fmt(metric(result, phase, "redis_cpu_us_per_job")) for phase, _ in phases]
        rows.append(cells)
    return rows


PG_TRAFFIC = (  # (JSON key, column label)
    ("pg_stmts_per_job", "stmts"),
    ("pg_stmts_all_per_job", "all stmts"),
    ("pg_xacts_per_job", "xacts"),
    ("pg_rows_written_per_job", "rows written"),
    ("pg_wal_bytes_per_job", "WAL bytes"),
    ("pg_cpu_us_per_job", "cpu us"),
)


def pg_traffic_rows(results: dict[str, dict[str, Any]], config: Config) -> list[list[str]]:
    """One row per system and phase (the PostgreSQL numbers do not fit side by side)."""
    phases = [("enqueue_single", "enq 1x1"), ("enqueue_bulk", "enq bulk"),
              *((f"drain_c{c}", f"drain c{c}") for c in config.concurrencies)]  # fmt: skip
    rows = [["postgres per job", "phase", *(label for _, label in PG_TRAFFIC)]]
    for name, result in of_service(results, "postgres").items():
        for phase, label in phases:
            if phase in result and "error" not in result[phase]:
                values = (fmt(metric(result, phase, key)) for key, _ in PG_TRAFFIC)
                rows.append([name, label, *values])
    return rows


def throughput_phases(config: Config) -> list[str]:
    return ["enqueue_single", "enqueue_bulk", *(f"drain_c{c}" for c in config.concurrencies)]


def baselines(results: dict[str, dict[str, Any]], config: Config) -> dict[str, dict[str, str]]:
    """Per service, per phase, the system the others are compared with."""
    chosen: dict[str, dict[str, str]] = {}
    if BASELINE in measured(results):
        chosen["redis"] = dict.fromkeys(throughput_phases(config), BASELINE)
    peers = [name for name in PG_PEERS if name in measured(results)]
    if peers:
        chosen["postgres"] = {
            phase: max(peers, key=lambda n: metric(results[n], phase, "jobs_per_s") or 0.0)
            for phase in throughput_phases(config)
        }
    return chosen


def ratios(results: dict[str, dict[str, Any]], config: Config) -> dict[str, dict[str, Any]]:
    """jobs/s of each system / jobs/s of its service's baseline in the same phase."""
    table: dict[str, dict[str, Any]] = {}
    for service, base_by_phase in baselines(results, config).items():
        for name, result in of_service(results, service).items():
            cells: dict[str, float | None] = {}
            for phase, base in base_by_phase.items():
                mine = metric(result, phase, "jobs_per_s")
                theirs = metric(results[base], phase, "jobs_per_s")
                cells[phase] = round(mine / theirs, 3) if mine and theirs else None
            table[name] = cells
    return table


def ratio_rows(results: dict[str, dict[str, Any]], config: Config, service: str) -> list[list[str]]:
    base_by_phase = baselines(results, config).get(service)
    if base_by_phase is None:
        return []
    label = BASELINE if service == "redis" else "faster of " + "/".join(PG_PEERS)
    rows = [[f"jobs/s vs {label}", "enq 1x1", "enq bulk",
             *(f"drain c{c}" for c in config.concurrencies)]]  # fmt: skip
    if service == "postgres":
        rows.append(["(baseline)", *base_by_phase.values()])
    table = ratios(results, config)
    for name in of_service(results, service):
        cells = table.get(name, {})
        rows.append([name, *(f"{cells[p]:.2f}x" if cells.get(p) else "-" for p in base_by_phase)])
    return rows


def history_rows(results: dict[str, dict[str, Any]], config: Config) -> list[list[str]]:
    """Each `+history` entry against its plain entry: drain jobs/s and worker CPU per job."""
    drains = [f"drain_c{c}" for c in config.concurrencies]
    rows = [["with history / without", *(f"c{c} jobs/s" for c in config.concurrencies),
             *(f"c{c} wrk cpu" for c in config.concurrencies)]]  # fmt: skip
    for name, result in measured(results).items():
        plain = results.get(name.removesuffix(HISTORY_SUFFIX), {})
        if not name.endswith(HISTORY_SUFFIX) or plain.get("status") != "ok":
            continue
        cells = [f"{name} ({result['history_runs']:,} runs)"]
        for key in ("jobs_per_s", "worker_cpu_us_per_job"):
            for drain in drains:
                mine, theirs = metric(result, drain, key), metric(plain, drain, key)
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


PACKAGES = ("taskiq", "taskiq-redis", "redis", "hub-scheduler", "procrastinate", "pgqueuer",
            "psycopg", "psycopg-pool", "asyncpg")  # fmt: skip


def machine_info(servers: dict[str, Any]) -> dict[str, Any]:
    packages: dict[str, str] = {}
    for pkg in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            packages[pkg] = importlib.metadata.version(pkg)
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **servers,
        "packages": packages,
    }


# --- main ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    """The private servers of this run (None: no selected system needs it)."""

    redis: RedisServer | None
    postgres: PgServer | None


async def open_stores(
    services: Services, stack: contextlib.AsyncExitStack
) -> tuple[dict[str, Store], dict[str, Any]]:
    """One store per service, emptied/dropped when `stack` closes; and what they run."""
    stores: dict[str, Store] = {}
    info: dict[str, Any] = {}
    if services.redis is not None:
        admin = await stack.enter_async_context(Redis.from_url(services.redis.url))
        stack.push_async_callback(admin.flushall)
        version = str((await admin.info("server"))["redis_version"])
        print(f"redis-server {version} (pid {services.redis.pid}) at {services.redis.url}")
        stores["redis"] = RedisStore(services.redis, admin)
        info["redis_server"] = version
    if services.postgres is not None:
        import pg  # noqa: PLC0415 - psycopg is only needed for the PostgreSQL systems

        store = await pg.PgStore.connect(services.postgres)
        stack.push_async_callback(store.aclose)
        stack.push_async_callback(store.drop)  # runs first: callbacks are last in, first out
        info["postgres"] = await store.describe()
        where = "own cluster" if services.postgres.private else "shared server"
        print(f"postgres {info['postgres']['server_version']} ({where}) at "
              f"{services.postgres.url_for(store.dbname)}")  # fmt: skip
        stores["postgres"] = store
    return stores, info


async def build_history(entry: Entry, store: Any) -> tuple[str, dict[str, Any]]:
    """A template database holding `entry.history` finished runs of the system (built once
    per run; each drain of the entry starts from a copy of it)."""
    started = time.perf_counter()
    template = await store.create_template("hist_" + entry.system.replace("-", "_"))
    url = store.server.url_for(template)
    await SYSTEMS[entry.system].install(url)
    filler = make_system(entry.system, url, worker_concurrency=HISTORY_FILL_CONCURRENCY)
    await filler.open()
    try:
        method = await filler.fill_history_fast(entry.history)
        if method is None:
            method = await fill_through_api(filler, entry.history)
    finally:
        await filler.close()
    await store.settle(template)
    await store.vacuum_analyze(template)  # a settled history, as a long-running system has
    await store.settle(template)
    seconds = round(time.perf_counter() - started, 1)
    print(f"{entry.key}: {entry.history:,} finished runs in a template database ({seconds} s)")
    return template, {"runs": entry.history, "method": method, "seconds": seconds}


async def fill_through_api(system: BenchSystem, runs: int) -> str:
    """Enqueue `runs` no-op jobs and drain them with an in-process worker: slow, but right
    for any table layout."""
    for start in range(0, runs, HISTORY_CHUNK):
        await system.enqueue_bulk(
            [{"i": i} for i in range(start, min(runs, start + HISTORY_CHUNK))]
        )
    done = 0
    stop = asyncio.Event()

    def count(_payload: Payload) -> None:
        nonlocal done
        done += 1
        if done >= runs:
            stop.set()

    async with asyncio.timeout(60 + runs / 100):
        await system.run_worker(HISTORY_FILL_CONCURRENCY, count, stop)
    return (f"enqueue_bulk in chunks of {HISTORY_CHUNK:,}, drained by an in-process worker "
            f"at concurrency {HISTORY_FILL_CONCURRENCY}")  # fmt: skip


async def measure_all(
    config: Config, entries: list[Entry], services: Services, workdir: Path
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Benchmark each entry (`config.repeat` passes, entries interleaved); returns what the
    servers run and the results."""
    results: dict[str, dict[str, Any]] = {}
    passes: dict[str, list[dict[str, dict[str, Any]]]] = {}
    fills: dict[str, dict[str, Any]] = {}
    templates: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        stores, info = await open_stores(services, stack)
        for entry in entries:
            system = SYSTEMS[entry.system]
            reason = system.unavailable_reason()
            if reason is not None:
                print(f"{entry.key}: SKIPPED ({reason})")
                results[entry.key] = {"status": "skipped", "service": system.service,
                                      "note": reason}  # fmt: skip
        for entry in entries:
            if entry.history and entry.key not in results:
                try:
                    templates[entry.key], fills[entry.key] = await build_history(
                        entry, stores["postgres"]
                    )
                except Exception as exc:  # the entry is skipped, the others still run
                    note = f"history fill failed: {type(exc).__name__}: {exc}"
                    print(f"{entry.key}: SKIPPED ({note})")
                    results[entry.key] = {"status": "skipped", "service": "postgres",
                                          "note": note}  # fmt: skip
        runnable = [entry for entry in entries if entry.key not in results]
        for n in range(config.repeat):
            for entry in runnable:
                print(f"{entry.key} (pass {n + 1}/{config.repeat}):")
                store = stores[SYSTEMS[entry.system].service]
                bench = Bench(entry, store, config, workdir, templates.get(entry.key))
                passes.setdefault(entry.key, []).append(await bench_system(bench))
    for entry in runnable:
        system = SYSTEMS[entry.system]
        history = {"history_runs": entry.history, "history_fill": fills.get(entry.key)}
        results[entry.key] = {
            "status": "ok",
            "service": system.service,
            "worker": system.worker_method,
            **(history if entry.history else {}),
            **median_pass(passes[entry.key]),
        }
    return info, {entry.key: results[entry.key] for entry in entries}


def report(config: Config, results: dict[str, dict[str, Any]]) -> None:
    tables = (
        throughput_rows(results, config),
        traffic_rows(results, config),
        pg_traffic_rows(results, config),
        ratio_rows(results, config, "redis"),
        ratio_rows(results, config, "postgres"),
        history_rows(results, config),
    )
    for rows in tables:
        if len(rows) > 1:
            print()
            print(render(rows))
    for line in notes(results):
        print(f"note: {line}")


def parse_args(argv: list[str] | None = None) -> tuple[Config, list[Entry], argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="jobs per enqueue/drain phase (default 20000)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 5000 jobs, 200 latency jobs (unless given)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.json")
    parser.add_argument("--backend", choices=sorted(DEFAULT_SYSTEMS),
                        help="default --systems: those on this service (redis)")  # fmt: skip
    parser.add_argument("--systems", help="comma list; any mix of services (default: --backend's)")
    parser.add_argument("--concurrency", default="5,50", help="drain concurrencies, comma list")
    parser.add_argument("--latency-jobs", type=int)
    parser.add_argument("--latency-interval-ms", type=float,
                        help="gap between latency jobs (default redis 2, postgres 20)")  # fmt: skip
    parser.add_argument("--latency-concurrency", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1,
                        help="passes per system; the median pass is reported")  # fmt: skip
    parser.add_argument("--postgres-url",
                        help="use this running server (a private database on it) instead of "
                             "starting a PostgreSQL cluster of our own")  # fmt: skip
    parser.add_argument("--pg-bin", help="directory of initdb/pg_ctl (default: newest found)")
    parser.add_argument("--history", type=int, default=0,
                        help="also measure the drains of --history-systems with this many "
                             "finished runs already in the store")  # fmt: skip
    parser.add_argument("--history-systems", default="hub-postgres",
                        help="PostgreSQL systems that --history applies to")  # fmt: skip
    args = parser.parse_args(argv)
    if args.systems:
        systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    else:
        systems = DEFAULT_SYSTEMS[args.backend or "redis"]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {sorted(SYSTEMS)}")
    if args.backend and {SYSTEMS[s].service for s in systems} != {args.backend}:
        parser.error(f"--systems {','.join(systems)} are not all on --backend {args.backend}")
    history_systems = {s.strip() for s in args.history_systems.split(",") if s.strip()}
    if args.history and any(SYSTEMS[s].service != "postgres" for s in history_systems):
        parser.error("--history applies to PostgreSQL systems only")
    entries: list[Entry] = []
    for name in systems:
        entries.append(Entry(name, name))
        if args.history and name in history_systems:
            entries.append(Entry(name + HISTORY_SUFFIX, name, args.history))
    config = Config(
        jobs=args.jobs or (5_000 if args.quick else 20_000),
        concurrencies=tuple(int(c) for c in args.concurrency.split(",")),
        latency_jobs=args.latency_jobs or (200 if args.quick else 500),
        latency_interval_s=args.latency_interval_ms / 1000 if args.latency_interval_ms else None,
        latency_concurrency=args.latency_concurrency,
        repeat=args.repeat,
        history=args.history,
    )
    if min(config.jobs, config.latency_jobs, config.repeat, *config.concurrencies) < 1:
        parser.error("--jobs, --latency-jobs, --concurrency and --repeat must be positive")
    if config.history < 0:
        parser.error("--history must not be negative")
    return config, entries, args


@contextlib.contextmanager
def postgres_server(args: argparse.Namespace) -> Iterator[PgServer]:
    import pg  # noqa: PLC0415 - psycopg is only needed for the PostgreSQL systems

    if args.postgres_url:
        with pg.shared_server(args.postgres_url) as server:
            yield server
    else:
        with pg.private_cluster(pg.find_pg_bin(args.pg_bin), free_port) as server:
            yield server


def main() -> None:
    config, entries, args = parse_args()
    services = {SYSTEMS[entry.system].service for entry in entries}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        running = Services(
            redis=stack.enter_context(private_redis(workdir)) if "redis" in services else None,
            postgres=stack.enter_context(postgres_server(args)) if "postgres" in services else None,
        )
        servers, results = asyncio.run(measure_all(config, entries, running, workdir))
    runtime_s = round(time.perf_counter() - started, 1)
    report(config, results)
    document = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(servers),
        "config": {
            "jobs": config.jobs,
            "concurrencies": list(config.concurrencies),
            "latency_jobs": config.latency_jobs,
            "latency_warmup_jobs": LATENCY_WARMUP_JOBS,
            "latency_interval_ms": {
                service: config.latency_interval_for(service) * 1000 for service in sorted(services)
            },
            "latency_concurrency": config.latency_concurrency,
            "repeat": config.repeat,
            "history": config.history,
            "baseline": {"redis": BASELINE, "postgres": "faster of " + ", ".join(PG_PEERS)},
        },
        "runtime_s": runtime_s,
        "baseline_by_phase": baselines(results, config),
        "ratios": ratios(results, config),
        "systems": results,
    }
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {out}; total runtime {runtime_s} s")


if __name__ == "__main__":
    main()
