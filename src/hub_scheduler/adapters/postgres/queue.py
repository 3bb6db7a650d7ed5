"""The queue, dead letters and run history on PostgreSQL: one ``runs`` table.

A queued run's place is ``(priority, queue_pos)``: new and due runs take the next value of
a sequence (the back), runs handed back or recovered take ever smaller negative values (the
front). A claim is ``FOR UPDATE SKIP LOCKED`` over the partial index of ready runs, so
workers never wait for each other. State changes of several steps are server-side functions
(see ``migrations/``): one round trip, one transaction. Instants come from the `Clock`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from hub_scheduler.adapters.postgres.codec import (
    RUN_COLUMNS,
    RUN_COLUMNS_R,
    check_payload_storable,
    decode_run,
    encode_error,
    iso,
    make_cursor,
    parse_cursor,
    utc,
)
from hub_scheduler.adapters.postgres.schema import LATEST_VERSION, describe, require_current
from hub_scheduler.adapters.postgres.store import MISSING, PostgresStore, unavailable
from hub_scheduler.domain.errors import (
    DeadLetterNotFoundError,
    IllegalTransitionError,
    InvalidJobError,
    RunNotFoundError,
    SchemaVersionError,
)
from hub_scheduler.domain.limits import JobLimits
from hub_scheduler.domain.model import (
    FINAL_STATES,
    RARE_FINAL_STATES,
    Priority,
    Run,
    RunState,
    TraceContext,
    encode_payload,
    new_run_id,
)
from hub_scheduler.domain.ports import (
    Claim,
    Enqueued,
    EnqueueRequest,
    Exchange,
    Failed,
    Outcome,
    Page,
    QueueSnapshot,
)
from hub_scheduler.domain.retry import GiveUp

#: Runs per enqueue call (each call is one transaction).
ENQUEUE_BATCH = 1000
#: Rows deleted per statement when cleaning history.
CLEAN_BATCH = 2000
_WAITING = ("queued", "delayed", "retry_scheduled")
_US = timedelta(microseconds=1)


_MS = timedelta(milliseconds=1)


def run_item(run_id: str, request: EnqueueRequest, limit: int) -> dict[str, Any]:
    """One run in the JSON batch format of ``insert_runs`` (checks the payload first)."""
    check_payload_storable(request.job, encode_payload(request.job, request.payload, limit))
    item: dict[str, Any] = {
        "id": run_id,
        "job": request.job,
        "priority": int(request.priority),
        "triggered_by": request.trigger.value,
        "payload": dict(request.payload),
    }
    optional = {
        "run_at": iso(request.run_at),
        "schedule_id": request.schedule_id,
        "slot": iso(request.slot),
        "origin_run_id": request.origin_run_id,
        "trace_context": None if request.trace_context is None else dict(request.trace_context),
        "workflow_id": request.workflow_id,
        "workflow_step": request.workflow_step,
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return item


def _enqueue_items(
    requests: Sequence[EnqueueRequest], limit: int, retention: timedelta
) -> tuple[list[dict[str, Any]], list[Enqueued]]:
    items, answers = [], []
    for request in requests:
        run_id = new_run_id()
        item = run_item(run_id, request, limit)
        key = request.idempotency_key
        if key is not None:
            if "\x00" in key:
                raise InvalidJobError("idempotency_key", "must not contain NUL characters")
            item["idempotency_key"] = key
            item["window_us"] = max(1, request.idempotency_window // _US)
            if request.on_duplicate is not None:  # a unique job's key: held while unfinished
                item["unique"] = request.on_duplicate.value
                item["window_us"] = retention // _US
        items.append(item)
        answers.append(Enqueued(run_id))
    return items, answers


def _settle_item(claim: Claim, outcome: Outcome, now: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {"id": claim.run.id, "token": claim.token, "kind": "s"}
    if isinstance(outcome, Failed):
        item["error"] = encode_error(outcome.error)
        if isinstance(outcome.decision, GiveUp):
            item["kind"] = "d"
        else:
            item["kind"] = "r"
            item["due"] = iso(now + outcome.decision.delay)
            item["attempt"] = outcome.decision.attempt
    return item


def _claims(rows: Sequence[DictRow], lease_until: datetime) -> list[Claim]:
    return [Claim(decode_run(row), row["token"], lease_until) for row in rows]


def _ready_now(requests: Sequence[EnqueueRequest], now: datetime) -> bool:
    return any(r.run_at is None or r.run_at <= now for r in requests)


@attrs.define
class PostgresJobQueue:
    """`JobQueue` (and `TransactionalEnqueue`) on PostgreSQL."""

    store: PostgresStore
    #: Whether an application connection was found on a current schema (checked once).
    _checked_in_transaction: bool = attrs.field(default=False, init=False, repr=False)

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """See `JobQueue.enqueue`; batches of `ENQUEUE_BATCH` runs per round trip."""
        now = self.store.clock.now()
        items, answers = _enqueue_items(requests, self.store.payload_limit, self.store.retention)
        query = self.store.q("SELECT * FROM {s}.enqueue(%s, %s, %s, %s)")
        for start in range(0, len(items), ENQUEUE_BATCH):
            notify = self.store.wakes.inline()
            rows = await self.store.fetch(
                "enqueue",
                query,
                [now, Jsonb(items[start : start + ENQUEUE_BATCH]), notify,
                 self.store.wake_channel],
            )  # fmt: skip
            for row in rows:
                answers[start + row["repeat_index"]] = Enqueued(row["first_run_id"], created=False)
            if not notify and _ready_now(requests[start : start + ENQUEUE_BATCH], now):
                self.store.wakes.later()
        return answers

    async def enqueue_in(
        self, connection: object, requests: Sequence[EnqueueRequest]
    ) -> list[Enqueued]:
        """See `TransactionalEnqueue.enqueue_in`: `connection` is a psycopg
        ``AsyncConnection`` to this backend's database, in the caller's transaction. The
        wake-up goes out with the caller's commit (none on rollback)."""
        if not isinstance(connection, psycopg.AsyncConnection):
            raise TypeError(
                "connection must be a psycopg.AsyncConnection to the backend's database, "
                f"not {type(connection).__name__}"
            )
        now = self.store.clock.now()
        items, answers = _enqueue_items(requests, self.store.payload_limit, self.store.retention)
        if not items:
            return answers
        try:
            if not self._checked_in_transaction:
                await require_current(connection, self.store.prefix)
                self._checked_in_transaction = True
            cur = connection.cursor(row_factory=dict_row)
            # Not debounced: PostgreSQL delivers a NOTIFY at commit, and only one per
            # transaction and channel however many enqueues made it. A debounced wake-up
            # sent later on a connection of ours could arrive before the caller commits, find
            # nothing to claim, and leave the runs to the workers' next poll.
            await cur.execute(
                self.store.q("SELECT * FROM {s}.enqueue(%s, %s, %s, %s)"),
                [now, Jsonb(items), True, self.store.wake_channel],
            )
            for row in await cur.fetchall():
                answers[row["repeat_index"]] = Enqueued(row["first_run_id"], created=False)
        except MISSING as exc:  # the connection's database has no schema for this hub
            self._checked_in_transaction = False
            raise SchemaVersionError(describe(self.store.prefix), 0, LATEST_VERSION) from exc
        except psycopg.Error as exc:
            raise unavailable("enqueue in transaction", exc) from exc
        return answers

    async def exchange(
        self,
        worker: str,
        settled: Sequence[tuple[Claim, Outcome]],
        want: int,
        lease: timedelta,
    ) -> Exchange:
        """See `JobQueue.exchange`: one call of the ``exchange`` function."""
        now = self.store.clock.now()
        items = [_settle_item(claim, outcome, now) for claim, outcome in settled]
        rows = await self.store.fetch(
            "exchange",
            self.store.q("SELECT * FROM {s}.exchange(%s, %s, %s, %s, %s)"),
            [now, lease, worker, want, Jsonb(items)],
        )
        first = rows[0]
        # A run of a job at its `max_running` is held, not claimed: it comes back queued; one
        # over its rate comes back delayed, due after the exchange looked for the next due.
        dues = [r["run_at"] for r in rows if r["state"] == RunState.DELAYED]
        if first["next_due"]:
            dues.append(first["next_due"])
        return Exchange(
            applied=tuple(first["applied"] or ()),
            claims=tuple(_claims([r for r in rows if r["state"] == RunState.ACTIVE], now + lease)),
            next_due=utc(min(dues)) if dues else None,
        )

    async def claim(self, worker: str, limit: int, lease: timedelta) -> list[Claim]:
        """See `JobQueue.claim`."""
        return list((await self.exchange(worker, (), limit, lease)).claims)

    async def keep_first_attempt_trace(self, claim: Claim, context: TraceContext) -> None:
        """See `AttemptTraces.keep_first_attempt_trace`."""
        await self.store.execute(
            "keep attempt trace",
            self.store.q(
                "UPDATE {s}.runs SET first_attempt_trace = %s WHERE id = %s AND token = %s"
            ),
            [Jsonb(dict(context)), claim.run.id, claim.token],
        )

    async def finish(self, claim: Claim, outcome: Outcome) -> Run | None:
        """See `JobQueue.finish`."""
        result = await self.exchange(claim.run.worker or "", [(claim, outcome)], 0, timedelta(0))
        if not result.applied[0]:
            return None
        return await load_run(self.store, claim.run.id)

    async def renew(self, worker: str, claims: Sequence[Claim], lease: timedelta) -> list[str]:
        """See `JobQueue.renew`."""
        if not claims:
            return []
        held = [{"id": c.run.id, "token": c.token} for c in claims]
        rows = await self.store.fetch(
            "renew",
            self.store.q(
                "UPDATE {s}.runs AS r SET lease_until = %s "
                "FROM jsonb_to_recordset(%s) AS c(id text, token bigint) "
                "WHERE r.id = c.id AND r.token = c.token AND r.state = 'active' "
                "AND r.worker = %s RETURNING r.id"
            ),
            [self.store.clock.now() + lease, Jsonb(held), worker],
        )
        kept = {row["id"] for row in rows}
        return [c.run.id for c in claims if c.run.id not in kept]

    async def hand_back(self, claims: Sequence[Claim], *, interrupted: bool = False) -> None:
        """See `JobQueue.hand_back`."""
        if not claims:
            return
        notify = self.store.wakes.inline()
        row = await self.store.fetch_one(
            "hand back",
            self.store.q("SELECT {s}.hand_back(%s, %s, %s, %s, %s) AS returned"),
            [Jsonb([{"id": c.run.id, "token": c.token} for c in claims]),
             self.store.clock.now(), interrupted, notify, self.store.wake_channel],
        )  # fmt: skip
        if not notify and row and row["returned"]:
            self.store.wakes.later()

    async def reap(
        self, max_stalls: int, lease: timedelta, limit: int = 100
    ) -> tuple[list[str], list[Claim]]:
        """See `JobQueue.reap`."""
        now = self.store.clock.now()
        notify = self.store.wakes.inline()
        rows = await self.store.fetch(
            "reap",
            self.store.q("SELECT * FROM {s}.reap(%s, %s, %s, %s, %s, %s)"),
            [now, lease, max_stalls, limit, notify, self.store.wake_channel],
        )
        requeued = [row["id"] for row in rows if row["state"] == RunState.QUEUED]
        if requeued and not notify:
            self.store.wakes.later()
        held = [row for row in rows if row["state"] == RunState.ACTIVE]
        return requeued, _claims(held, now + lease)

    async def cancel(self, run_id: str) -> Run:
        """See `JobQueue.cancel`."""
        row = await self.store.fetch_one(
            "cancel",
            self.store.q(
                "WITH before AS (SELECT id, state FROM {s}.runs WHERE id = %(id)s FOR UPDATE), "
                "moved AS (UPDATE {s}.runs AS r SET "
                "state = CASE WHEN b.state = 'active' THEN r.state ELSE 'cancelled' END, "
                "finished_at = CASE WHEN b.state = 'active' THEN r.finished_at "
                "ELSE %(now)s END, "
                "cancel_requested_at = CASE WHEN b.state = 'active' "
                "THEN coalesce(r.cancel_requested_at, %(now)s) END, "
                "run_at = CASE WHEN b.state = 'active' THEN r.run_at END, "
                "queue_pos = NULL, parked = false FROM before AS b "
                "WHERE r.id = b.id "
                "AND b.state IN ('queued', 'delayed', 'retry_scheduled', 'active') "
                "RETURNING r.*) "
                "SELECT b.state AS before_state, m.* FROM before AS b LEFT JOIN moved AS m ON true"
            ),
            {"id": run_id, "now": self.store.clock.now()},
        )
        if row is None:
            raise RunNotFoundError(run_id)
        if row["id"] is None:
            raise IllegalTransitionError(run_id, row["before_state"], RunState.CANCELLED.value)
        if row["before_state"] == RunState.ACTIVE:
            self.store.wakes.later()  # workers look for cancel requests when woken
        return decode_run(row)

    async def cancel_requests(self, claims: Sequence[Claim]) -> list[str]:
        """See `JobQueue.cancel_requests`."""
        if not claims:
            return []
        rows = await self.store.fetch(
            "cancel requests",
            self.store.q(
                "SELECT id FROM {s}.runs WHERE id = ANY(%s) AND state = 'active' "
                "AND cancel_requested_at IS NOT NULL"
            ),
            [[c.run.id for c in claims]],
        )
        return [row["id"] for row in rows]

    async def settle_cancelled(self, claim: Claim) -> Run | None:
        """See `JobQueue.settle_cancelled`."""
        row = await self.store.fetch_one(
            "settle cancelled",
            self.store.q(
                "UPDATE {s}.runs AS r SET state = 'cancelled', finished_at = %(now)s, "
                "lease_until = NULL, "
                "attempts = {s}.attempts_with(r.attempts, {s}.attempt_entry("
                "r, %(now)s, 'cancelled', NULL, NULL), r.worker = 'reaper'), "
                "attempts_dropped = r.attempts_dropped "
                "+ {s}.attempts_dropping(r.attempts, r.worker = 'reaper') "
                "WHERE r.id = %(id)s AND r.token = %(token)s AND r.state = 'active' "
                "RETURNING r.*"
            ),
            {"id": claim.run.id, "token": claim.token, "now": self.store.clock.now()},
        )
        return None if row is None else decode_run(row)

    async def set_limits(self, limits: Mapping[str, JobLimits]) -> None:
        """See `JobQueue.set_limits`."""
        if not limits:
            return
        declared = [
            {
                "job": job,
                "max": limit.max_running,
                "count": None if limit.rate is None else limit.rate.count,
                "window_ms": None if limit.rate is None else limit.rate.per // _MS,
                "key": None if limit.rate is None else limit.rate.key,
            }
            for job, limit in sorted(limits.items())
        ]
        await self.store.execute(
            "set limits",
            self.store.q(
                "WITH d AS (SELECT * FROM jsonb_to_recordset(%(limits)s) "
                "AS d(job text, max int, count int, window_ms bigint, key text)), "
                "gone AS (DELETE FROM {s}.job_limits AS l USING d WHERE l.job = d.job "
                "AND d.max IS NULL AND d.count IS NULL RETURNING l.job), "
                "kept AS (INSERT INTO {s}.job_limits AS l (job, max_running, rate_count, "
                "rate_window_ms, rate_key) "
                "SELECT d.job, d.max, d.count, d.window_ms, d.key FROM d "
                "WHERE d.max IS NOT NULL OR d.count IS NOT NULL "
                "ON CONFLICT (job) DO UPDATE SET max_running = EXCLUDED.max_running, "
                "rate_count = EXCLUDED.rate_count, "
                "rate_window_ms = EXCLUDED.rate_window_ms, rate_key = EXCLUDED.rate_key "
                "RETURNING l.job, l.max_running) "
                "SELECT (SELECT count(*) FROM gone), "
                "(SELECT sum({s}.release_held(k.job, k.max_running)) FROM kept AS k "
                "WHERE k.max_running IS NOT NULL), "
                "pg_notify(%(channel)s, '')"
            ),
            {"limits": Jsonb(declared), "channel": self.store.wake_channel},
        )
        # Runs held for a max_running that went away: release them all, in a statement of
        # their own (the statement above does not see its own changes to job_limits).
        unlimited = [job for job, limit in limits.items() if limit.max_running is None]
        await self.store.execute(
            "release held",
            self.store.q(
                "UPDATE {s}.runs AS r SET held = false, "
                "parked = EXISTS (SELECT 1 FROM {s}.paused_jobs AS p WHERE p.job = r.job) "
                "WHERE r.job = ANY(%s) AND r.state = 'queued' AND r.parked AND r.held"
            ),
            [unlimited],
        )

    async def pause(self, job: str | None = None) -> None:
        """See `JobQueue.pause`."""
        if job is None:
            await self.store.execute(
                "pause", self.store.q("UPDATE {s}.queue_flags SET paused = true WHERE id = 1")
            )
            return
        await self.store.execute(
            "pause job",
            self.store.q(
                "WITH p AS (INSERT INTO {s}.paused_jobs (job) VALUES (%(job)s) "
                "ON CONFLICT DO NOTHING) "
                "UPDATE {s}.runs SET parked = true "
                "WHERE job = %(job)s AND state = 'queued' AND NOT parked"
            ),
            {"job": job},
        )

    async def resume(self, job: str | None = None) -> None:
        """See `JobQueue.resume`: parked runs keep their places, so they start in their
        original order, ahead of runs enqueued while they waited."""
        if job is None:
            await self.store.execute(
                "resume",
                self.store.q(
                    "WITH u AS (UPDATE {s}.queue_flags SET paused = false WHERE id = 1) "
                    "SELECT pg_notify(%s, '')"
                ),
                [self.store.wake_channel],
            )
            return
        await self.store.execute(
            "resume job",
            self.store.q(
                "WITH d AS (DELETE FROM {s}.paused_jobs WHERE job = %(job)s), "
                "u AS (UPDATE {s}.runs SET parked = false "
                "WHERE job = %(job)s AND state = 'queued' AND parked AND NOT held) "
                "SELECT pg_notify(%(channel)s, '')"
            ),
            {"job": job, "channel": self.store.wake_channel},
        )

    async def paused_among(self, jobs: Sequence[str]) -> frozenset[str]:
        """See `JobQueue.paused_among`: one lookup of the paused_jobs primary key."""
        if not jobs:
            return frozenset()
        rows = await self.store.fetch(
            "paused jobs",
            self.store.q("SELECT job FROM {s}.paused_jobs WHERE job = ANY(%s::text[])"),
            [list(jobs)],
        )
        return frozenset(row["job"] for row in rows)

    async def snapshot(self) -> QueueSnapshot:
        """See `JobQueue.snapshot`. Counting walks the partial indexes: cheap for queues of
        thousands, linear in their size."""
        priorities = sorted(Priority)
        row = await self.store.fetch_one(
            "snapshot",
            self.store.q(
                "SELECT "
                "(SELECT jsonb_object_agg(d.priority, d.n) FROM (SELECT priority, count(*) AS n "
                " FROM {s}.runs WHERE state = 'queued' AND NOT parked GROUP BY priority) AS d)"
                " AS depth, "
                "(SELECT count(*) FROM {s}.runs WHERE state IN ('delayed', 'retry_scheduled'))"
                " AS delayed, "
                "(SELECT count(*) FROM {s}.runs WHERE state = 'active') AS active, "
                "(SELECT coalesce(sum(succeeded), 0) FROM {s}.job_stats WHERE kind = 't')"
                " AS succeeded, "
                "(SELECT coalesce(sum(failed + dead), 0) FROM {s}.job_stats WHERE kind = 't')"
                " AS failed, "
                "(SELECT coalesce(sum(dead), 0) FROM {s}.job_stats WHERE kind = 't')"
                " AS gave_up, "
                "(SELECT jsonb_object_agg(w.worker, w.n) FROM (SELECT worker, count(*) AS n "
                " FROM {s}.runs WHERE state = 'active' AND worker IS NOT NULL GROUP BY worker)"
                " AS w) AS by_worker, "
                "(SELECT count(*) FROM {s}.runs WHERE dead_at IS NOT NULL) AS dead, "
                "(SELECT paused FROM {s}.queue_flags WHERE id = 1) AS paused, "
                "(SELECT array_agg(job) FROM {s}.paused_jobs) AS paused_jobs, "
                "(SELECT count(*) FROM {s}.runs WHERE state = 'queued' AND parked) AS parked, "
                "(SELECT min(h.enqueued_at) FROM unnest(%s::smallint[]) AS p(pri) "
                " CROSS JOIN LATERAL (SELECT x.enqueued_at FROM {s}.runs AS x "
                " WHERE x.state = 'queued' AND NOT x.parked AND x.priority = p.pri "
                " ORDER BY x.queue_pos LIMIT 1) AS h) AS oldest_ready, "
                "(SELECT min(enqueued_at) FROM {s}.runs WHERE state = 'queued' AND parked)"
                " AS oldest_parked"
            ),
            [[int(p) for p in priorities]],
        )
        if row is None:  # a SELECT of scalars always has its row
            raise RuntimeError("snapshot returned no row")
        depth = row["depth"] or {}
        oldest = [utc(t) for t in (row["oldest_ready"], row["oldest_parked"]) if t]
        now = self.store.clock.now()
        return QueueSnapshot(
            depth={p: int(depth.get(str(int(p)), 0)) for p in priorities},
            delayed=row["delayed"],
            active=row["active"],
            dead=row["dead"],
            paused=bool(row["paused"]),
            paused_jobs=frozenset(row["paused_jobs"] or ()),
            parked=row["parked"],
            oldest_waiting=now - min(oldest) if oldest else None,
            succeeded=int(row["succeeded"]),
            failed=int(row["failed"]),
            gave_up=int(row["gave_up"]),
            active_by_worker={w: int(n) for w, n in (row["by_worker"] or {}).items()},
        )


async def load_run(store: PostgresStore, run_id: str) -> Run | None:
    """One run, or None."""
    row = await store.fetch_one(
        "load run",
        store.q("SELECT {columns} FROM {s}.runs WHERE id = %s", columns=RUN_COLUMNS),
        [run_id],
    )
    return decode_run(row) if row else None


def _page(rows: Sequence[DictRow], limit: int, at: str, seq: str) -> Page[Run]:
    """The first `limit` of `rows` (fetched with one more, to know whether more follow)."""
    items = rows[:limit]
    more = len(rows) > limit
    cursor = make_cursor(utc(items[-1][at]), items[-1][seq]) if more else None
    return Page(tuple(decode_run(r) for r in items), cursor)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")


@attrs.define
class PostgresDeadLetters:
    """`DeadLetters` on PostgreSQL: dead runs with ``dead_at`` set, newest first."""

    store: PostgresStore

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Run]:
        """See `DeadLetters.list`."""
        _check_limit(limit)
        params: dict[str, Any] = {"n": limit + 1}
        after = "true"
        if cursor:
            params["at"], params["seq"] = parse_cursor(cursor)
            after = "(dead_at, dead_seq) < (%(at)s, %(seq)s)"
        query = self.store.q(
            "SELECT {columns}, dead_at, dead_seq FROM {s}.runs "
            "WHERE dead_at IS NOT NULL AND {after} "
            "ORDER BY dead_at DESC, dead_seq DESC LIMIT %(n)s",
            columns=RUN_COLUMNS,
            after=after,
        )
        rows = await self.store.fetch("dead letters", query, params)
        return _page(rows, limit, "dead_at", "dead_seq")

    async def get(self, run_id: str) -> Run:
        """See `DeadLetters.get`."""
        row = await self.store.fetch_one(
            "dead letter",
            self.store.q(
                "SELECT {columns} FROM {s}.runs WHERE id = %s AND dead_at IS NOT NULL",
                columns=RUN_COLUMNS,
            ),
            [run_id],
        )
        if row is None:
            raise DeadLetterNotFoundError(run_id)
        return decode_run(row)

    async def retry(self, run_id: str) -> str:
        """See `DeadLetters.retry`."""
        [new_id] = await self._retry([run_id])
        if not new_id:
            raise DeadLetterNotFoundError(run_id)
        return new_id

    async def retry_all(self) -> builtins.list[str]:
        """See `DeadLetters.retry_all`."""
        new_ids: builtins.list[str] = []
        while ids := await self._oldest(ENQUEUE_BATCH):
            new_ids.extend(i for i in await self._retry(ids) if i)
        return new_ids

    async def delete(self, run_id: str) -> None:
        """See `DeadLetters.delete`."""
        changed = await self.store.execute(
            "delete dead letter",
            self.store.q(
                "UPDATE {s}.runs SET dead_at = NULL, dead_seq = NULL "
                "WHERE id = %s AND dead_at IS NOT NULL"
            ),
            [run_id],
        )
        if not changed:
            raise DeadLetterNotFoundError(run_id)

    async def purge(self) -> int:
        """See `DeadLetters.purge`."""
        return await self.store.execute(
            "purge dead letters",
            self.store.q(
                "UPDATE {s}.runs SET dead_at = NULL, dead_seq = NULL WHERE dead_at IS NOT NULL"
            ),
        )

    async def _oldest(self, count: int) -> builtins.list[str]:
        rows = await self.store.fetch(
            "dead letters",
            self.store.q(
                "SELECT id FROM {s}.runs WHERE dead_at IS NOT NULL "
                "ORDER BY dead_at, dead_seq LIMIT %s"
            ),
            [count],
        )
        return [row["id"] for row in rows]

    async def _retry(self, run_ids: Sequence[str]) -> builtins.list[str]:
        """New run ids, one per dead letter ('' where it was gone)."""
        pairs = [{"dead": run_id, "new": new_run_id()} for run_id in run_ids]
        notify = self.store.wakes.inline()
        rows = await self.store.fetch(
            "retry dead letters",
            self.store.q("SELECT * FROM {s}.retry_dead(%s, %s, %s, %s) AS dead_id"),
            [self.store.clock.now(), Jsonb(pairs), notify, self.store.wake_channel],
        )
        taken = {row["dead_id"] for row in rows}
        if taken and not notify:
            self.store.wakes.later()
        return [pair["new"] if pair["dead"] in taken else "" for pair in pairs]


@attrs.define
class PostgresRunHistory:
    """`RunHistory` on PostgreSQL: every run, newest first by enqueue time."""

    store: PostgresStore
    #: With a state filter, index entries read per `list` call at most, in pages of the
    #: limit (as many pages as the Redis backend reads): a short page with a cursor means
    #: "more may follow".
    max_scan_pages: int = 20

    async def get(self, run_id: str) -> Run:
        """See `RunHistory.get`."""
        run = await load_run(self.store, run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    async def list(
        self,
        *,
        job: str | None = None,
        states: frozenset[RunState] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Run]:
        """See `RunHistory.list`."""
        _check_limit(limit)
        params: dict[str, Any] = {"job": job, "n": limit + 1}
        where = "job = %(job)s" if job else "true"
        after = "true"
        if cursor:
            params["at"], params["seq"] = parse_cursor(cursor)
            after = "(enqueued_at, seq) < (%(at)s, %(seq)s)"
        if states is not None and len(states) == 1 and states <= RARE_FINAL_STATES:
            # Dead or cancelled runs alone: a range of runs_final_states (migration 0011), no
            # scan. The literal IN repeats the partial index's predicate: the planner uses the
            # index only when it can see the query implies it, which a parameter does not show.
            params["state"] = next(iter(states)).value
            where += " AND state = %(state)s AND state IN ('dead', 'cancelled')"
            states = None
        if states is None:
            query = self.store.q(
                "SELECT {columns}, seq FROM {s}.runs WHERE {where} AND {after} "
                "ORDER BY enqueued_at DESC, seq DESC LIMIT %(n)s",
                columns=RUN_COLUMNS,
                where=where,
                after=after,
            )
            rows = await self.store.fetch("history", query, params)
            return _page(rows, limit, "enqueued_at", "seq")
        params["scan"] = limit * self.max_scan_pages
        params["states"] = sorted(s.value for s in states)
        query = self.store.q(
            "WITH w AS MATERIALIZED (SELECT id, state, enqueued_at, seq FROM {s}.runs "
            "WHERE {where} AND {after} ORDER BY enqueued_at DESC, seq DESC LIMIT %(scan)s), "
            "edge AS (SELECT count(*) OVER () AS scanned, enqueued_at AS edge_at, "
            "seq AS edge_seq FROM w ORDER BY enqueued_at, seq LIMIT 1), "
            "hits AS (SELECT id AS hit FROM w WHERE state = ANY(%(states)s::text[]) "
            "ORDER BY enqueued_at DESC, seq DESC LIMIT %(n)s) "
            "SELECT edge.scanned, edge.edge_at, edge.edge_seq, r.seq, {columns} "
            "FROM edge LEFT JOIN (hits JOIN {s}.runs AS r ON r.id = hits.hit) ON true "
            "ORDER BY r.enqueued_at DESC, r.seq DESC",
            columns=RUN_COLUMNS_R,
            where=where,
            after=after,
        )
        rows = await self.store.fetch("history", query, params)
        if not rows:
            return Page(())
        hits = [row for row in rows if row["id"] is not None]
        if len(hits) > limit:
            return _page(hits, limit, "enqueued_at", "seq")
        edge = rows[0]
        more = edge["scanned"] >= params["scan"]
        next_cursor = make_cursor(utc(edge["edge_at"]), edge["edge_seq"]) if more else None
        return Page(tuple(decode_run(r) for r in hits), next_cursor)

    async def latest(self, jobs: Sequence[str]) -> dict[str, Run]:
        """See `RunHistory.latest`: one query, one runs_job_history probe per job."""
        if not jobs:
            return {}
        rows = await self.store.fetch(
            "latest runs",
            self.store.q(
                "SELECT {columns} FROM unnest(%s::text[]) AS j(name) CROSS JOIN LATERAL "
                "(SELECT * FROM {s}.runs AS r WHERE r.job = j.name "
                "ORDER BY r.enqueued_at DESC, r.seq DESC LIMIT 1) AS r",
                columns=RUN_COLUMNS_R,
            ),
            [list(dict.fromkeys(jobs))],
        )
        return {row["job"]: decode_run(row) for row in rows}

    async def clean(self, older_than: datetime, states: frozenset[RunState] | None = None) -> int:
        """See `RunHistory.clean` (dead letters stay). Also drops what expired on the clock:
        idempotency keys, statistics older than the retention, presence reports and shared
        values."""
        allowed = sorted(s.value for s in (states or FINAL_STATES) & FINAL_STATES)
        removed = 0
        delete = self.store.q(
            "DELETE FROM {s}.runs WHERE id IN (SELECT id FROM {s}.runs "
            "WHERE enqueued_at < %s AND state = ANY(%s::text[]) AND dead_at IS NULL LIMIT %s)"
        )
        while True:
            gone = await self.store.execute("clean", delete, [older_than, allowed, CLEAN_BATCH])
            removed += gone
            if gone < CLEAN_BATCH:
                break
        now = self.store.clock.now()
        stats_before = now - self.store.retention - timedelta(days=1)
        epoch_s = int(stats_before.timestamp())
        await self.store.execute(
            "clean",
            self.store.q(
                "WITH i AS (DELETE FROM {s}.idempotency WHERE expires_at <= %(now)s), "
                "w AS (DELETE FROM {s}.workers WHERE expires_at <= %(now)s), "
                "sc AS (DELETE FROM {s}.schedulers WHERE expires_at <= %(now)s), "
                "sh AS (DELETE FROM {s}.shared WHERE expires_at <= %(now)s), "
                "wf AS (DELETE FROM {s}.workflows WHERE saved_at < %(old)s) "
                "DELETE FROM {s}.job_stats WHERE (kind = 'h' AND bucket < %(hour)s) "
                "OR (kind = 'd' AND bucket < %(day)s)"
            ),
            {
                "now": now,
                "old": now - self.store.retention,
                "hour": epoch_s // 3600,
                "day": epoch_s // 86400,
            },
        )
        return removed
