"""EXPLAIN (ANALYZE, BUFFERS) of every statement hub-postgres runs, over a big history.

    .venv/bin/python bench/pg_plans.py                  # 10^6 finished runs (~2 min)
    .venv/bin/python bench/pg_plans.py --runs 100000 --out bench/results/plans-1e5.txt

Starts a private PostgreSQL cluster (bench/pg.py), creates the hub's schema, writes `--runs`
succeeded runs into its history with `HUB_HISTORY_FILL_SQL` (bench/systems.py; read back
through the hub's API), checks that a filled run has the same shape as one enqueued and
drained through the API, `VACUUM ANALYZE`s (a settled history), and enqueues a `--backlog`
of ready runs, as a drain starts from.

Then every operation the adapter runs is called through the hub's own API (the real SQL,
parameters and plan caching: psycopg prepares a statement on its fifth run, PL/pgSQL caches
its plans per session), `--calls` times each, with `auto_explain` loaded into every session
of the database (`log_analyze`, `log_buffers`, `log_timing`, `log_nested_statements`,
`log_min_duration = 0`, JSON format): the plan of each statement — those inside the
server-side functions `exchange`, `enqueue`, `reap`, `hand_back`, `fire` too — is read back
from the server log and printed as EXPLAIN text, for the last call of each operation.

Hot path (enqueue, claim and settle in `exchange`, renew, reap, hand back): any
sequential scan there, in any call, of a table other than the one-row `queue_flags` and the
(normally empty) `paused_jobs`, fails the run (exit status 1). Elsewhere sequential scans are
listed, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pg
import psycopg
from psycopg import sql
from run import BENCH_DIR, free_port
from systems import HUB_PREFIX, TASK_NAME, HubPostgresSystem

#: Small tables a sequential scan is the right plan for: one row by construction (CHECK id = 1),
#: and the paused jobs (empty unless an operator paused some).
TINY_TABLES = frozenset({"queue_flags", "paused_jobs"})
LEASE = dt.timedelta(seconds=30)
WORKER = "pg-plans:1:000001"
AUTO_EXPLAIN = {
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_timing": "on",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_format": "json",
}
_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] ", re.MULTILINE)


class ShiftClock:
    """The system clock plus an offset the script moves forward (to expire leases)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --- the server log ------------------------------------------------------------------------


@dataclass
class Plan:
    """One statement's plan, as auto_explain logged it."""

    query: str
    duration_ms: float
    root: dict[str, Any]
    nested: bool = False  # a statement of a server-side function (not sent by the client)

    def nodes(self) -> Iterator[dict[str, Any]]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.get("Plans", [])))

    def seq_scans(self) -> list[str]:
        return [n.get("Relation Name", "?") for n in self.nodes() if n["Node Type"] == "Seq Scan"]

    def index_scans(self) -> list[str]:
        return [n["Index Name"] for n in self.nodes() if n.get("Index Name")]


def nested(query: str) -> bool:
    """Whether a logged statement ran inside a server-side function: the adapter names every
    table and function it sends with the quoted schema; the functions' bodies never do."""
    sent = f'"{HUB_PREFIX}".' in query or query.startswith("SELECT pg_notify(")
    sent = sent or query.strip() == "SELECT 1"  # the pool's ping
    return not sent


class ServerLog:
    """Reads the auto_explain entries the server appended since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def skip(self) -> None:
        self.offset = self.path.stat().st_size

    def read(self) -> list[Plan]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        self.offset += len(text.encode())
        starts = [m.start() for m in _ENTRY.finditer(text)] + [len(text)]
        plans = []
        for begin, end in itertools.pairwise(starts):
            entry = text[begin:end]
            head, sep, body = entry.partition("  plan:\n")
            if not sep:
                continue
            found = re.search(r"duration: ([0-9.]+) ms", head)
            doc = json.loads(body)
            query = doc["Query Text"]
            plans.append(Plan(query, float(found[1]) if found else 0.0, doc["Plan"], nested(query)))
        return plans


# --- EXPLAIN text from the JSON plans -------------------------------------------------------

_DETAILS = ("Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "Filter",
            "Rows Removed by Filter", "Rows Removed by Index Recheck", "Heap Fetches",
            "Sort Key", "Sort Method", "Group Key", "Conflict Resolution",
            "Conflict Arbiter Indexes",
            "Tuples Inserted", "Conflicting Tuples", "One-Time Filter", "Cache Key")  # fmt: skip
_BUFFERS = (("Shared Hit Blocks", "shared hit"), ("Shared Read Blocks", "read"),
            ("Shared Dirtied Blocks", "dirtied"), ("Shared Written Blocks", "written"),
            ("Local Hit Blocks", "local hit"), ("Temp Read Blocks", "temp read"),
            ("Temp Written Blocks", "temp written"))  # fmt: skip


def node_title(node: dict[str, Any]) -> str:
    kind = node["Node Type"]
    if kind == "ModifyTable":
        kind = node.get("Operation", "Modify")
    elif kind == "Aggregate" and node.get("Strategy") not in (None, "Plain"):
        kind = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate"}.get(node["Strategy"], kind)
    if node.get("Scan Direction") == "Backward":
        kind += " Backward"
    if node.get("Index Name"):
        kind += f" using {node['Index Name']}"
    target = node.get("Relation Name") or node.get("Function Name") or node.get("CTE Name")
    if target:
        alias = node.get("Alias")
        kind += f" on {target}" + (f" {alias}" if alias and alias != target else "")
    if node.get("Subplan Name"):
        kind = f"{node['Subplan Name']}: {kind}" if node.get("Parent Relationship") in (
            "InitPlan", "SubPlan") else kind  # fmt: skip
    if "Actual Rows" in node:
        kind += (f"  (actual time={node.get('Actual Startup Time', 0):.3f}.."
                 f"{node.get('Actual Total Time', 0):.3f} rows={node['Actual Rows']:.0f} "
                 f"loops={node.get('Actual Loops', 1)})")  # fmt: skip
        if node.get("Actual Loops") == 0:
            kind += " never executed"
    return kind


def render_plan(node: dict[str, Any], depth: int = 0) -> list[str]:
    pad = "  " * depth
    lines = [pad + ("->  " if depth else "") + node_title(node)]
    inner = pad + ("      " if depth else "  ")
    for key in _DETAILS:
        if node.get(key) not in (None, [], 0, ""):
            value = node[key]
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            lines.append(f"{inner}{key}: {value}")
    buffers = [f"{label}={node[key]}" for key, label in _BUFFERS if node.get(key)]
    if buffers:
        lines.append(f"{inner}Buffers: {' '.join(buffers)}")
    for child in node.get("Plans", []):
        lines.extend(render_plan(child, depth + 1))
    return lines


def short_query(text: str, width: int = 150) -> str:
    text = " ".join(re.sub(r"--[^\n]*", " ", text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


# --- the operations -------------------------------------------------------------------------

Action = Callable[[], Awaitable[Any]]


@dataclass
class Step:
    label: str
    hot: bool
    calls: list[list[Plan]] = field(default_factory=list)

    @property
    def last(self) -> list[Plan]:
        return self.calls[-1] if self.calls else []

    def seq_scans(self) -> set[str]:
        return {rel for call in self.calls for plan in call for rel in plan.seq_scans()}

    def offending(self) -> set[str]:
        return self.seq_scans() - TINY_TABLES if self.hot else set()


@dataclass
class Recorder:
    log: ServerLog
    calls: int
    steps: list[Step] = field(default_factory=list)

    async def step(self, label: str, action: Action, *, hot: bool, calls: int = 0) -> None:
        """Run `action` `calls` times (default `self.calls`), one log read per call."""
        step = Step(label, hot)
        self.steps.append(step)
        self.log.skip()
        for _ in range(calls or self.calls):
            await action()
            await asyncio.sleep(0.02)  # the backend wrote its log lines before answering
            step.calls.append(self.log.read())
        print(f"  {label}: {len(step.calls)} calls, {len(step.last)} statements in the last")


async def fill(store: pg.PgStore, runs: int) -> dict[str, Any]:
    """Schema, `runs` finished runs (read back through the API), the shape check, VACUUM.
    With no runs, only the schema: a new store, never analyzed, as a drain of run.py's plain
    entry sees it (autovacuum does not get to it within a drain)."""
    await store.reset()
    await HubPostgresSystem.install(store.url)
    if not runs:
        return {"method": "none: an empty, never analyzed schema"}
    system = HubPostgresSystem(store.url, worker_concurrency=5)
    await system.open()
    try:
        started = time.perf_counter()
        method = await system.fill_history_fast(runs)
        fill_s = time.perf_counter() - started
        shape = await check_shape(system, store.url)
    finally:
        await system.close()
    started = time.perf_counter()
    await store.vacuum_analyze(store.dbname)
    return {"method": method, "fill_s": round(fill_s, 1), "shape": shape,
            "vacuum_analyze_s": round(time.perf_counter() - started, 1)}  # fmt: skip


async def check_shape(system: HubPostgresSystem, url: str) -> str:
    """Run 3 jobs through the API (enqueue, worker) and compare their rows with filled ones:
    the same columns set and unset, the same values where a no-op run's are fixed."""
    done = asyncio.Event()
    seen = 0

    def count(_payload: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1
        if seen == 3:
            done.set()

    await system.enqueue_bulk([{"i": -1}, {"i": -2}, {"i": -3}])
    async with asyncio.timeout(30):
        await system.run_worker(5, count, done)
    fixed = ("job", "state", "priority", "attempt", "triggered_by", "stalls", "token", "parked")
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            sql.SQL("SELECT * FROM {} WHERE payload->>'i' IN ('-1', '1') ORDER BY seq").format(
                sql.Identifier(HUB_PREFIX, "runs")
            )
        )
        columns = [c.name for c in cur.description or ()]
        rows = [dict(zip(columns, row, strict=True)) for row in await cur.fetchall()]
    filled, api = rows
    differ = [
        c
        for c in columns
        if (filled[c] is None) != (api[c] is None) or (c in fixed and filled[c] != api[c])
    ]
    if differ:
        raise RuntimeError(f"filled runs differ from API runs in {differ}: {filled} vs {api}")
    for c in ("seq", "enqueued_at", "started_at", "finished_at"):
        if not filled[c] < api[c]:
            raise RuntimeError(f"filled run's {c} is not older than the API run's")
    nulls = sorted(c for c in columns if api[c] is None)
    return f"same shape as a run drained through the API (NULL in both: {', '.join(nulls)})"


@dataclass
class Ops:
    """The adapter's operations through the hub's API; `quiet` is a hub whose sessions
    opened before auto_explain was switched on (for untimed bulk work)."""

    hub: Any
    quiet: Any
    rec: Recorder
    held: list[Any] = field(default_factory=list)

    async def exchange(self, settled: list[Any], want: int) -> None:
        result = await self.hub.queue.exchange(WORKER, settled, want, LEASE)
        self.held = self.held[len(settled) :] + list(result.claims)

    async def settle_and_claim(self) -> None:
        """A c5 worker's round trip: the 5 it ran settle, 5 more are claimed."""
        from hub_scheduler.domain.ports import Succeeded  # noqa: PLC0415

        await self.exchange([(c, Succeeded()) for c in self.held[:5]], 5)

    async def settle_failures(self) -> None:
        from hub_scheduler.domain.model import ErrorInfo  # noqa: PLC0415
        from hub_scheduler.domain.ports import Failed  # noqa: PLC0415
        from hub_scheduler.domain.retry import GiveUp, RetryAfter  # noqa: PLC0415

        error = ErrorInfo("RuntimeError", "boom", "")
        retry, dead = Failed(error, RetryAfter(dt.timedelta(0), 2)), Failed(error, GiveUp(1))
        await self.exchange([(c, retry if n % 2 else dead) for n, c in enumerate(self.held[:4])], 4)

    async def claim_and_hand_back(self) -> None:
        claims = await self.hub.queue.claim(WORKER, 5, LEASE)
        await self.hub.queue.hand_back(claims)

    async def worker_path(self, backlog: int) -> None:
        from hub_scheduler import Job  # noqa: PLC0415
        from hub_scheduler.domain.ports import WorkerInfo  # noqa: PLC0415

        hub, rec, queue = self.hub, self.rec, self.hub.queue
        print(f"  backlog: {backlog:,} ready runs (enqueue_many, not explained)")
        await self.quiet.enqueue_many([Job(TASK_NAME, {"i": i}) for i in range(backlog)])
        await rec.step("enqueue: one run", lambda: hub.enqueue(TASK_NAME, {"i": 0}), hot=True)
        batch = [Job(TASK_NAME, {"i": k}) for k in range(1000)]
        await rec.step("enqueue: 1,000 runs (enqueue_many)", lambda: hub.enqueue_many(batch),
                       hot=True, calls=3)  # fmt: skip
        await rec.step("exchange: claim 5, nothing to settle", lambda: self.exchange([], 5),
                       hot=True, calls=1)  # fmt: skip
        await rec.step("exchange: settle 5 succeeded + claim 5 (a c5 worker)",
                       self.settle_and_claim, hot=True)  # fmt: skip
        await rec.step("exchange: settle 2 retries + 2 dead, promote due retries, claim 4",
                       self.settle_failures, hot=True)  # fmt: skip
        await rec.step("renew: the worker's held leases",
                       lambda: queue.renew(WORKER, self.held, LEASE), hot=True)  # fmt: skip
        await rec.step("reap: no lease expired", lambda: queue.reap(1, LEASE), hot=True)
        hub.clock.offset += LEASE + dt.timedelta(seconds=1)
        await rec.step("reap: the held leases expired (requeued to the front)",
                       lambda: queue.reap(1, LEASE), hot=True, calls=1)  # fmt: skip
        self.held = []
        await rec.step("hand back: 5 claims (claim, then hand back)", self.claim_and_hand_back,
                       hot=True)  # fmt: skip
        info = WorkerInfo(WORKER, "pg-plans", 1, 5, 5, hub.clock.now())
        await rec.step("heartbeat: worker_seen (every 5 s per worker)",
                       lambda: hub.presence.worker_seen(info, LEASE), hot=False)  # fmt: skip
        await self.exchange([], 5)

    async def reads(self) -> None:
        from hub_scheduler.domain.model import RunState  # noqa: PLC0415

        hub, rec = self.hub, self.rec
        page = await hub.history.list(limit=50)
        succeeded, dead = frozenset({RunState.SUCCEEDED}), frozenset({RunState.DEAD})
        for label, action in (
            ("history: first page (50)", lambda: hub.history.list(limit=50)),
            ("history: next page (cursor)",
             lambda: hub.history.list(cursor=page.next_cursor, limit=50)),
            ("history: the job's runs (50)", lambda: hub.history.list(job=TASK_NAME, limit=50)),
            ("history: succeeded runs (50)", lambda: hub.history.list(states=succeeded, limit=50)),
            ("history: dead runs (rare: reads 1,000 entries)",
             lambda: hub.history.list(states=dead, limit=50)),
            ("history: one run", lambda: hub.history.get(page.items[0].id)),
            ("dead letters: first page (50)", lambda: hub.dead_letters.list(limit=50)),
            ("snapshot", hub.queue.snapshot),
            ("stats: one job, every window", lambda: hub.stats.job(TASK_NAME, hub.clock.now())),
        ):  # fmt: skip
            await rec.step(label, action, hot=False)

    async def schedules(self) -> None:
        from hub_scheduler.domain.schedule import Every, Schedule  # noqa: PLC0415

        hub, rec = self.hub, self.rec
        every = Schedule(Every(dt.timedelta(minutes=1)), job=TASK_NAME, id="pg-plans-every")
        await hub.schedules.create(every, hub.clock.now())
        scheduler = hub.scheduler()

        async def tick() -> None:
            hub.clock.offset += dt.timedelta(minutes=1)
            await scheduler.tick()

        await rec.step("schedule: due + fire one slot (scheduler tick)", tick, hot=False)
        await rec.step("schedule: next due", hub.schedules.next_due_at, hot=False)
        await rec.step("clean: history older than the retention (nothing that old)",
                       lambda: hub.history.clean(hub.clock.now() - dt.timedelta(days=90)),
                       hot=False, calls=1)  # fmt: skip

    async def after_drain(self, runs: int) -> None:
        """Claims after a drain: the runs claimed and settled since the last VACUUM leave dead
        entries at the head of runs_ready that every claim walks past until vacuum runs."""
        drained = await drain_quietly(self.quiet, runs)
        print(f"  drained {drained:,} more runs (not explained)")
        await self.rec.step(
            f"exchange: settle 5 + claim 5, after {drained:,} runs drained since VACUUM",
            self.settle_and_claim,
            hot=True,
        )


async def drain_quietly(quiet: Any, runs: int) -> int:
    """Claim and settle `runs` runs through a hub whose sessions are not explained."""
    from hub_scheduler.domain.ports import Succeeded  # noqa: PLC0415

    held: list[Any] = []
    done = 0
    while done < runs:
        settled = [(c, Succeeded()) for c in held]
        done += len(settled)
        result = await quiet.queue.exchange("pg-plans:quiet", settled, 50, LEASE)
        held = list(result.claims)
        if not held and not settled:
            break
    return done


async def enable_auto_explain(store: pg.PgStore) -> None:
    for name, value in AUTO_EXPLAIN.items():
        await store.admin.execute(
            sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(store.dbname), sql.Identifier(*name.split(".")), sql.Literal(value)
            )
        )


# --- the report -----------------------------------------------------------------------------


def report(steps: list[Step], out: Any) -> list[str]:
    """Print every step's plans (last call) and the summary; the failures."""
    failures = []
    for step in steps:
        print(f"\n=== {step.label}{'  [hot path]' if step.hot else ''}", file=out)
        print(f"calls: {len(step.calls)}; statements per call: {len(step.last)}; "
              f"seq scans in any call: {sorted(step.seq_scans()) or 'none'}", file=out)  # fmt: skip
        for plan in step.last:
            where = "inside a function" if plan.nested else "sent by the client"
            print(f"\n-- {where}, {plan.duration_ms:.3f} ms: {short_query(plan.query)}", file=out)
            print("\n".join(render_plan(plan.root)), file=out)
        bad = step.offending()
        if bad:
            failures.append(f"{step.label}: Seq Scan on {', '.join(sorted(bad))}")
    return failures


def summary(steps: list[Step]) -> list[list[str]]:
    rows = [["operation", "hot", "stmts", "ms (last call)", "shared hit/read", "indexes used",
             "seq scans"]]  # fmt: skip
    for step in steps:
        last = step.last
        # A client statement's buffers and time include those of the statements it ran.
        outer = [p for p in last if not p.nested]
        hit = sum(p.root.get("Shared Hit Blocks", 0) for p in outer)
        read = sum(p.root.get("Shared Read Blocks", 0) for p in outer)
        ms = sum(p.duration_ms for p in outer)
        indexes = sorted({i for p in last for i in p.index_scans()})
        rows.append([step.label, "yes" if step.hot else "", str(len(last)), f"{ms:.2f}",
                     f"{hit}/{read}", ", ".join(indexes) or "-",
                     ", ".join(sorted(step.seq_scans())) or "-"])  # fmt: skip
    return rows


def render(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


async def main_async(args: argparse.Namespace, server: pg.PgServer) -> int:
    from hub_scheduler import Hub  # noqa: PLC0415

    if server.log_path is None:
        raise SystemExit("needs the private cluster's log (no --postgres-url here)")
    store = await pg.PgStore.connect(server)
    try:
        print(f"filling {args.runs:,} finished runs ...")
        filled = await fill(store, args.runs)
        print(f"  {filled}")
        sizes = await table_sizes(store)
        print(f"  {sizes}")
        # A hub whose sessions open before auto_explain is switched on: the untimed bulk work.
        quiet = Hub(store.url, prefix=HUB_PREFIX)
        await quiet.ping()
        await enable_auto_explain(store)
        hub = Hub(store.url, prefix=HUB_PREFIX, clock=ShiftClock())
        hub.job(TASK_NAME)(noop)
        quiet.job(TASK_NAME)(noop)
        await hub.ping()  # opens the pool and checks the schema version: not per operation
        rec = Recorder(ServerLog(server.log_path), args.calls)
        try:
            ops = Ops(hub, quiet, rec)
            await ops.worker_path(args.backlog)
            await ops.reads()
            await ops.schedules()
            await ops.after_drain(args.backlog // 2)
        finally:
            await hub.aclose()
            await quiet.aclose()
    finally:
        await store.drop()
        await store.aclose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as out:
        print(
            f"# bench/pg_plans.py --runs {args.runs} --backlog {args.backlog} "
            f"--calls {args.calls}  ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)",
            file=out,
        )
        print(f"# history: {filled}\n# sizes after VACUUM ANALYZE: {sizes}", file=out)
        failures = report(rec.steps, out)
        table = render(summary(rec.steps))
        print(f"\n=== summary (last call of each operation)\n{table}", file=out)
    print(f"\n{table}\n\nplans of the last call of each operation: {args.out}")
    if failures:
        print("\nFAIL: sequential scans on the hot path:\n  " + "\n  ".join(failures))
        return 1
    print("\nOK: no sequential scan on the hot path (claim, settle, renew, reap, enqueue, hand "
          f"back) other than of {', '.join(sorted(TINY_TABLES))}")  # fmt: skip
    return 0


async def noop(_ctx: Any) -> None:
    """The no-op job the hub registers (it never runs here)."""


async def table_sizes(store: pg.PgStore) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(store.url) as conn:
        cur = await conn.execute(
            "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND c.relkind IN ('r', 'i') AND pg_relation_size(c.oid) > 65536 "
            "ORDER BY pg_relation_size(c.oid) DESC",
            [HUB_PREFIX],
        )
        return dict(await cur.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000,
                        help="finished runs in history (0: an empty, never analyzed "
                             "schema)")  # fmt: skip
    parser.add_argument("--backlog", type=int, default=20_000, help="ready runs before explaining")
    parser.add_argument("--calls", type=int, default=8,
                        help="calls per operation (> 5: psycopg and PL/pgSQL cache plans "
                             "from the sixth)")  # fmt: skip
    parser.add_argument("--pg-bin", help="directory of initdb/pg_ctl (default: newest found)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "pg_plans.txt")
    args = parser.parse_args()
    with pg.private_cluster(pg.find_pg_bin(args.pg_bin), free_port) as server:
        status = asyncio.run(main_async(args, server))
    sys.exit(status)


if __name__ == "__main__":
    main()
