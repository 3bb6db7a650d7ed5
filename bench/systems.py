"""The queue systems the benchmark compares, behind one small interface.

Each system is a `BenchSystem`: the harness (`run.py`) uses `enqueue_one` / `enqueue_bulk`
on a client instance, and the worker subprocess (`worker_proc.py`) uses `run_worker` on a
worker instance. A job is always the same no-op: the worker calls the handler it was given
with the job's JSON payload and returns.

A system names the `service` it runs on ("redis" or "postgres"); the harness gives it the URL
of that service's private server (Redis) or private database (PostgreSQL), empties it before
every phase and then calls `install()` once, so a system can create its schema.

Adding a system: subclass `BenchSystem`, add it to `SYSTEMS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from taskiq import AsyncBroker
from taskiq.receiver import Receiver
from taskiq_redis import ListQueueBroker, RedisStreamBroker

Payload = dict[str, Any]
JobHandler = Callable[[Payload], None]

TASK_NAME = "bench.noop"
# Bulk enqueue for taskiq = `asyncio.gather` over this many `kiq()` calls at a time. taskiq has no
# batch API; 500 was the fastest of 50/100/500/5000 on the 2-core dev box (the client is
# CPU-bound in taskiq's message building, so batching gains little).
TASKIQ_BULK_CHUNK = 500
# How long the Receiver waits for running callbacks after the stop event (no-op jobs: short).
WAIT_TASKS_TIMEOUT_S = 10.0
HUB_PREFIX = "bench"
# Connections of a PostgreSQL client instance (the harness enqueues from one task at a time).
PG_CLIENT_POOL = 2


class SystemUnavailableError(RuntimeError):
    """The system cannot be benchmarked in this checkout (e.g. not written yet)."""


class BenchSystem(ABC):
    """One queue system: a client that enqueues no-op jobs, a worker that runs them.

    `worker_concurrency` is None for a client instance and the worker's concurrency for a
    worker instance (some systems size their fetches by it).
    """

    name: ClassVar[str]
    service: ClassVar[str] = "redis"
    enqueue_one_method: ClassVar[str]
    enqueue_bulk_method: ClassVar[str]
    worker_method: ClassVar[str]

    def __init__(self, url: str, *, worker_concurrency: int | None = None) -> None:
        self.url = url
        self.worker_concurrency = worker_concurrency

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this system cannot run here, or None when it can."""
        return None

    @classmethod
    async def install(cls, url: str) -> None:
        """Create the schema in the empty store at `url` (before any instance opens)."""
        del url  # the Redis systems declare their keys as they go

    @abstractmethod
    async def open(self) -> None:
        """Connect and declare whatever the queue needs (called once, before anything else)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def enqueue_one(self, payload: Payload) -> None:
        """Enqueue one no-op job and return once the queue has it."""

    @abstractmethod
    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        """Enqueue many no-op jobs the fastest honest way the library offers."""

    @abstractmethod
    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        """Run jobs, at most `concurrency` at once, calling `handler(payload)` for each.

        Returns after `stop` is set and the jobs already started have finished.
        """

    async def fill_history_fast(self, runs: int) -> str | None:
        """Write `runs` finished runs straight into the store (SQL); the method used, or None
        when this system has no such shortcut (the harness then enqueues and drains them)."""
        del runs
        return None


class _TaskiqSystem(BenchSystem):
    """Shared code for taskiq brokers: one registered task, a `Receiver` as the worker."""

    worker_method = "taskiq Receiver(max_async_tasks=C).listen(finish_event), no result backend"
    enqueue_one_method = "await task.kiq(payload)"
    enqueue_bulk_method = f"asyncio.gather of task.kiq() in chunks of {TASKIQ_BULK_CHUNK}"

    def __init__(self, url: str, *, worker_concurrency: int | None = None) -> None:
        super().__init__(url, worker_concurrency=worker_concurrency)
        self._handler: JobHandler | None = None
        self.broker = self._make_broker()
        self.broker.is_worker_process = worker_concurrency is not None

        async def noop(payload: dict[str, Any]) -> None:
            if self._handler is not None:
                self._handler(payload)

        self._task = self.broker.register_task(noop, task_name=TASK_NAME)

    @abstractmethod
    def _make_broker(self) -> AsyncBroker: ...

    async def open(self) -> None:
        await self.broker.startup()

    async def close(self) -> None:
        await self.broker.shutdown()

    async def enqueue_one(self, payload: Payload) -> None:
        await self._task.kiq(payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        for start in range(0, len(payloads), TASKIQ_BULK_CHUNK):
            chunk = payloads[start : start + TASKIQ_BULK_CHUNK]
            await asyncio.gather(*(self._task.kiq(payload) for payload in chunk))

    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        self._handler = handler
        receiver = Receiver(
            self.broker,
            max_async_tasks=concurrency,
            run_startup=False,  # open() already ran broker.startup()
            wait_tasks_timeout=WAIT_TASKS_TIMEOUT_S,
        )
        await receiver.listen(stop)


class TaskiqListSystem(_TaskiqSystem):
    """taskiq-redis `ListQueueBroker`: LPUSH to enqueue, one BRPOP per job, no ack."""

    name = "taskiq-list"

    def _make_broker(self) -> AsyncBroker:
        # redis-py 8 defaults to socket_timeout=5, which kills the un-timed BRPOP of an idle
        # worker (research/taskiq-internals.md 1.1.4).
        return ListQueueBroker(self.url, queue_name="bench:taskiq-list", socket_timeout=None)


class TaskiqStreamSystem(_TaskiqSystem):
    """taskiq-redis `RedisStreamBroker`: XADD, XREADGROUP COUNT C, XACK per job."""

    name = "taskiq-stream"

    def _make_broker(self) -> AsyncBroker:
        # xread_count defaults to 100 whatever the concurrency; sized to the worker's concurrency
        # here, as one would in production (taskiq-internals.md 1.1.2). xread_block stays at its
        # 2 s default, below redis-py 8's 5 s socket timeout.
        return RedisStreamBroker(
            self.url,
            queue_name="bench:taskiq-stream",
            xread_count=self.worker_concurrency or 100,
        )


class HubSystem(BenchSystem):
    """hub_scheduler's own queue: Lua scripts on redis-py, taskiq's Receiver as the engine.

    Every run also gets its history record, a lease and a priority; the worker settles
    finished runs and claims the next ones in one Lua call.
    """

    name = "hub"
    enqueue_one_method = "await hub.enqueue(name, payload)"
    enqueue_bulk_method = "await hub.enqueue_many([...]) (500 runs per Lua call)"
    worker_method = "async with hub.worker(concurrency=C) (taskiq Receiver over our pump)"

    def __init__(self, url: str, *, worker_concurrency: int | None = None) -> None:
        super().__init__(url, worker_concurrency=worker_concurrency)
        from hub_scheduler import Hub  # noqa: PLC0415 - only this system needs it

        self._handler: JobHandler | None = None
        self.hub = Hub(url, prefix=HUB_PREFIX)

        @self.hub.job(TASK_NAME)
        async def noop(ctx: Any) -> None:
            if self._handler is not None:
                self._handler(dict(ctx.payload))

        self._name = TASK_NAME

    async def open(self) -> None:
        await self.hub.ping()

    async def close(self) -> None:
        await self.hub.aclose()

    async def enqueue_one(self, payload: Payload) -> None:
        await self.hub.enqueue(self._name, payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        from hub_scheduler import Job  # noqa: PLC0415 - only this system needs it

        await self.hub.enqueue_many([Job(self._name, payload) for payload in payloads])

    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        self._handler = handler
        async with self.hub.worker(concurrency=concurrency):
            await stop.wait()


async def run_until_stopped(
    worker: Awaitable[None], stop: asyncio.Event, halt: Callable[[], Any]
) -> None:
    """Run `worker` until `stop` is set, then `halt()` it and wait for it to return; a worker
    that ends on its own (an error) ends this too."""
    task = asyncio.ensure_future(worker)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        halt()
        # procrastinate's worker re-raises the cancellation it was stopped with
        with contextlib.suppress(asyncio.CancelledError):
            await task
    elif not task.cancelled():
        task.result()


class ProcrastinateSystem(BenchSystem):
    """procrastinate: `App(connector=PsycopgConnector(...))`, `defer_async`, its own worker.

    A job is one `procrastinate_jobs` row plus `procrastinate_events` rows (by trigger) for
    each status change; with the default `delete_jobs="never"` finished jobs stay, as history.
    """

    name = "procrastinate"
    service = "postgres"
    enqueue_one_method = "await task.defer_async(**payload)"
    enqueue_bulk_method = "await task.batch_defer_async(*payloads) (one statement for all N)"
    worker_method = (
        "app.run_worker_async(concurrency=C, install_signal_handlers=False); psycopg pool of "
        "C+1 connections (+1 for LISTEN); defaults otherwise (listen_notify, delete_jobs=never)"
    )

    def __init__(self, url: str, *, worker_concurrency: int | None = None) -> None:
        super().__init__(url, worker_concurrency=worker_concurrency)
        self._handler: JobHandler | None = None
        # procrastinate's docs: with short jobs the pool needs as many connections as the
        # concurrency, plus one (its LISTEN connection is outside the pool).
        pool = worker_concurrency + 1 if worker_concurrency else PG_CLIENT_POOL
        self.app = self._app(url, pool)

        @self.app.task(name=TASK_NAME)
        async def noop(**payload: Any) -> None:
            if self._handler is not None:
                self._handler(payload)

        self._task = noop

    @staticmethod
    def _app(url: str, pool: int) -> Any:
        import procrastinate  # noqa: PLC0415 - only this system needs it

        connector = procrastinate.PsycopgConnector(conninfo=url, min_size=pool, max_size=pool)
        return procrastinate.App(connector=connector)

    @classmethod
    async def install(cls, url: str) -> None:
        app = cls._app(url, 1)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def enqueue_one(self, payload: Payload) -> None:
        await self._task.defer_async(**payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        await self._task.batch_defer_async(*payloads)

    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        self._handler = handler
        worker = asyncio.ensure_future(
            self.app.run_worker_async(concurrency=concurrency, install_signal_handlers=False)
        )
        # Cancelling run_worker_async is procrastinate's graceful stop: it stops fetching,
        # waits for running jobs, unregisters the worker, then re-raises the cancellation.
        await run_until_stopped(worker, stop, worker.cancel)


def pgqueuer_batch_size(concurrency: int) -> int:
    """The largest batch pgqueuer accepts for a worker cap of `concurrency` (it requires
    max_concurrent_tasks >= 2 * batch_size): fewest dequeue round trips for no-op jobs."""
    return max(1, concurrency // 2)


class PgQueuerSystem(BenchSystem):
    """pgqueuer on asyncpg (the driver its README and benchmark use; ~1.7x psycopg in its own
    numbers): `Queries.enqueue`, and `PgQueuer.run` as `pgq run` calls it.

    A job is one `pgqueuer` row, deleted when done, plus a `pgqueuer_log` row per status
    (queued, picked, successful: its history), written by triggers and a batched log buffer.
    """

    name = "pgqueuer"
    service = "postgres"
    enqueue_one_method = "await queries.enqueue(name, payload_bytes)"
    enqueue_bulk_method = "await queries.enqueue([name] * N, payloads, [0] * N) (one statement)"
    worker_method = (
        "PgQueuer(AsyncpgDriver(one asyncpg connection)).run(max_concurrent_tasks=C, "
        "batch_size=max(1, C // 2)); defaults otherwise (durable tables, NOTIFY, 30 s heartbeat)"
    )

    def __init__(self, url: str, *, worker_concurrency: int | None = None) -> None:
        super().__init__(url, worker_concurrency=worker_concurrency)
        self._conn: Any = None
        self._queries: Any = None

    @staticmethod
    async def _connect(url: str) -> tuple[Any, Any]:
        import asyncpg  # noqa: PLC0415 - only this system needs it
        from pgqueuer.db import AsyncpgDriver  # noqa: PLC0415
        from pgqueuer.queries import Queries  # noqa: PLC0415

        conn = await asyncpg.connect(url)
        return conn, Queries(AsyncpgDriver(conn))

    @classmethod
    async def install(cls, url: str) -> None:
        conn, queries = await cls._connect(url)
        try:
            await queries.install()
        finally:
            await conn.close()

    async def open(self) -> None:
        self._conn, self._queries = await self._connect(self.url)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def enqueue_one(self, payload: Payload) -> None:
        await self._queries.enqueue(TASK_NAME, json.dumps(payload).encode())

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        await self._queries.enqueue(
            [TASK_NAME] * len(payloads),
            [json.dumps(payload).encode() for payload in payloads],
            [0] * len(payloads),
        )

    async def run_worker(self, concurrency: int, handler: JobHandler, stop: asyncio.Event) -> None:
        from pgqueuer import PgQueuer  # noqa: PLC0415 - only this system needs it
        from pgqueuer.models import Job as PgqJob  # noqa: PLC0415

        pgq = PgQueuer(self._queries.driver, queries=self._queries)

        @pgq.entrypoint(TASK_NAME)
        async def noop(job: PgqJob) -> None:
            handler(json.loads(job.payload or b"{}"))

        # max_concurrent_tasks is the per-process cap (what C means for the other systems);
        # an entrypoint's concurrency_limit would be a fleet-wide one, counted in SQL.
        worker = pgq.run(
            max_concurrent_tasks=concurrency, batch_size=pgqueuer_batch_size(concurrency)
        )
        await run_until_stopped(worker, stop, pgq.shutdown.set)


class HubPostgresSystem(HubSystem):
    """hub_scheduler on its PostgreSQL backend (`postgresql://`), through the same API.

    Skipped (see `unavailable_reason`) in a checkout without the backend or its driver.
    """

    name = "hub-postgres"
    service = "postgres"
    enqueue_one_method = "await hub.enqueue(name, payload)"
    enqueue_bulk_method = "await hub.enqueue_many([...])"
    worker_method = "async with hub.worker(concurrency=C)"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        from hub_scheduler.adapters.backends import factory_for  # noqa: PLC0415
        from hub_scheduler.domain.errors import HubSchedulerError  # noqa: PLC0415

        try:
            factory_for("postgresql")
        except (HubSchedulerError, ImportError) as exc:
            return f"no postgresql backend in this checkout ({type(exc).__name__}: {exc})"
        return None

    @classmethod
    async def install(cls, url: str) -> None:
        from hub_scheduler.adapters.postgres import migrate  # noqa: PLC0415

        await migrate(url, HUB_PREFIX)  # what `hub-scheduler db migrate` runs

    async def fill_history_fast(self, runs: int) -> str | None:
        import psycopg  # noqa: PLC0415 - only this system needs it

        now = dt.datetime.now(dt.UTC)
        params = {
            "runs": runs,
            "first": now - HISTORY_SPAN,
            "step_us": max(1, HISTORY_SPAN // dt.timedelta(microseconds=1) // max(runs, 1)),
        }
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            query = HUB_HISTORY_FILL_SQL.format(prefix=HUB_PREFIX, job=TASK_NAME)
            await conn.execute(query.encode(), params)
        await self.check_history(runs)
        return (
            "one INSERT ... SELECT FROM generate_series (HUB_HISTORY_FILL_SQL): runs and "
            f"job_stats, enqueued over the {HISTORY_SPAN.days} days before the fill"
        )

    async def check_history(self, runs: int) -> dict[str, Any]:
        """Read the filled history back through the hub's own API: a page of it, the next
        page, a page of succeeded runs of the job, the queue snapshot and the job's
        statistics must agree with `runs`. Returns what it read (RuntimeError if not)."""
        from hub_scheduler.domain.model import RunState  # noqa: PLC0415

        page = await self.hub.history.list(limit=50)
        older = (
            await self.hub.history.list(cursor=page.next_cursor, limit=50)
            if page.next_cursor
            else None
        )
        done = await self.hub.history.list(
            job=TASK_NAME, states=frozenset({RunState.SUCCEEDED}), limit=10
        )
        snapshot = await self.hub.queue.snapshot()
        stats = await self.hub.stats.job(TASK_NAME, dt.datetime.now(dt.UTC))
        problems = [
            what
            for what, ok in (
                ("a history page", len(page.items) == min(runs, 50)),
                ("succeeded, finished runs", all(
                    r.state is RunState.SUCCEEDED and r.finished_at for r in page.items)),
                ("the next page, older", older is None or (bool(older.items) and
                    older.items[0].enqueued_at <= page.items[-1].enqueued_at)),
                ("the job's succeeded runs", len(done.items) == min(runs, 10)),
                ("an idle queue", snapshot.active == snapshot.dead == snapshot.delayed == 0),
                ("total succeeded", stats.totals.succeeded == runs),
                ("succeeded in 7d", stats.windows["7d"].succeeded == runs),
            )
            if not ok
        ]  # fmt: skip
        if problems:
            raise RuntimeError(f"filled history reads back wrong: {', '.join(problems)}")
        return {
            "newest": page.items[0] if page.items else None,
            "snapshot": snapshot,
            "stats_totals": stats.totals,
            "stats_7d": stats.windows["7d"],
        }


#: The finished runs of `--history` are spread evenly over this span, ending at the fill.
HISTORY_SPAN = dt.timedelta(days=3)

# N succeeded runs of job {job}, exactly as the adapter leaves a no-op job's run behind after
# enqueue (insert_runs) -> claim -> settle (exchange), plus the job_stats counters that settle
# keeps. One statement; {prefix} is the hub's schema, %(runs)s/%(first)s/%(step_us)s come from
# fill_history_fast. Column by column, what the adapter writes:
#   id            16 random hex digits (new_run_id): md5 of a counter, so pkey inserts of later
#                 runs land all over the index, as they do in production
#   seq           nextval('hub_seq') at enqueue, in enqueue order (later runs get larger ones)
#   queue_pos     seq at enqueue, NULL once claimed; run_at NULL (not delayed), parked false
#   state         'succeeded'; attempt 1; stalls 0; token 1 (the one claim); error NULL
#   priority      10 (NORMAL, the bench job's); triggered_by 'manual'; payload {"i": n}
#   enqueued_at   evenly over HISTORY_SPAN, oldest first; started_at 2-8 ms later, finished_at
#                 0-12 ms after that (duration buckets 0..4); lease_until NULL
#   worker        one of 4 worker ids (claim sets it, settle keeps it)
#   schedule_id, slot, idempotency_key, origin_run_id, dead_at, dead_seq: NULL (no schedule,
#                 no key: the idempotency table stays empty; not dead)
# job_stats: the rows exchange's tally upserts, per (job, kind, bucket, shard): an 'h' row per
# hour and a 'd' row per day of finished_at with succeeded counts and the 41 duration buckets
# (bucket_counts of duration_bucket(ms), the adapter's own functions), and a 't' row with the
# total and last_success; shard = abs(hashtext(worker)) % 8, as exchange computes it.
# (No % in the SQL text: psycopg would read it as a placeholder.)
HUB_HISTORY_FILL_SQL = """
WITH fresh AS (
    INSERT INTO "{prefix}".runs (
        id, seq, job, state, priority, attempt, enqueued_at, triggered_by, payload, run_at,
        started_at, finished_at, worker, error, stalls, token, lease_until, queue_pos, parked,
        schedule_id, slot, idempotency_key, origin_run_id, dead_at, dead_seq)
    SELECT substr(md5('hub-bench-history:' || g), 1, 16), nextval('"{prefix}".hub_seq'),
           '{job}', 'succeeded', 10, 1, t.enqueued_at, 'manual', jsonb_build_object('i', g),
           NULL, t.started_at, t.started_at + make_interval(secs => mod(g * 7, 13) / 1000.0),
           'bench-history:' || mod(g, 4) || ':000000', NULL, 0, 1, NULL, NULL, false,
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM generate_series(1, %(runs)s::bigint) AS g
    CROSS JOIN LATERAL (
        SELECT e.enqueued_at, e.enqueued_at + make_interval(secs => (2 + mod(g, 7)) / 1000.0)
               AS started_at
        FROM (SELECT %(first)s::timestamptz
                     + (g - 1) * %(step_us)s::bigint * interval '1 microsecond' AS enqueued_at)
             AS e
    ) AS t
    ORDER BY g
    RETURNING job, worker, started_at, finished_at
), settled AS (
    SELECT f.job, mod(abs(hashtext(f.worker)), 8)::smallint AS shard, f.finished_at,
           floor(extract(epoch FROM f.finished_at) / 3600)::bigint AS hour,
           floor(extract(epoch FROM f.finished_at) / 86400)::bigint AS day,
           "{prefix}".duration_bucket(
               floor(extract(epoch FROM f.finished_at - f.started_at) * 1000)::bigint) AS took
    FROM fresh AS f
)
INSERT INTO "{prefix}".job_stats (job, kind, bucket, shard, succeeded, failed, dead, durations,
                                  last_success)
SELECT job, 'h', hour, shard, count(*), 0, 0, "{prefix}".bucket_counts(array_agg(took)),
       NULL::timestamptz
FROM settled GROUP BY job, hour, shard
UNION ALL
SELECT job, 'd', day, shard, count(*), 0, 0, "{prefix}".bucket_counts(array_agg(took)),
       NULL::timestamptz
FROM settled GROUP BY job, day, shard
UNION ALL
SELECT job, 't', 0, shard, count(*), 0, 0, NULL::bigint[], max(finished_at)
FROM settled GROUP BY job, shard
"""


SYSTEMS: dict[str, type[BenchSystem]] = {
    system.name: system
    for system in (
        TaskiqListSystem,
        TaskiqStreamSystem,
        HubSystem,
        ProcrastinateSystem,
        PgQueuerSystem,
        HubPostgresSystem,
    )
}


def make_system(name: str, url: str, *, worker_concurrency: int | None = None) -> BenchSystem:
    """Build the named system (raises KeyError for an unknown name)."""
    return SYSTEMS[name](url, worker_concurrency=worker_concurrency)
