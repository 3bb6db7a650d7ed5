"""`ScheduleStore` on PostgreSQL: a ``schedules`` table (definition as versioned JSON beside
the runtime state) and the ``slots`` ledger. Firing is the ``fire`` function: version check,
enqueue, ledger and advance in one transaction."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, LiteralString

import attrs
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from hub_scheduler.adapters.postgres.codec import (
    decode_schedule,
    encode_schedule,
    iso,
    make_cursor,
    parse_cursor,
    utc,
)
from hub_scheduler.adapters.postgres.queue import run_item
from hub_scheduler.adapters.postgres.store import PostgresStore
from hub_scheduler.domain.errors import ScheduleExistsError, ScheduleNotFoundError
from hub_scheduler.domain.model import new_run_id
from hub_scheduler.domain.ports import (
    Enqueued,
    EnqueueRequest,
    Page,
    PlannedFire,
    ScheduleState,
    SlotRecord,
)
from hub_scheduler.domain.schedule import Schedule, SlotDecision, SlotOutcome

#: The columns `_state` reads.
STATE: Final[LiteralString] = (
    "id, definition, paused, declared, next_fire, last_fire, last_outcome, runs, version"
)

#: `STATE` of the ``t`` alias (what `PostgresScheduleStore.claim_due` returns).
CLAIMED: Final[LiteralString] = (
    "t.id, t.definition, t.paused, t.declared, t.next_fire, t.last_fire, t.last_outcome, "
    "t.runs, t.version"
)


def _state(row: DictRow) -> ScheduleState:
    outcome = row["last_outcome"]
    return ScheduleState(
        schedule=decode_schedule(row["definition"]),
        next_fire=utc(row["next_fire"]) if row["next_fire"] else None,
        paused=row["paused"],
        declared=row["declared"],
        last_fire=utc(row["last_fire"]) if row["last_fire"] else None,
        last_outcome=SlotOutcome(outcome) if outcome else None,
        runs=row["runs"],
        version=row["version"],
    )


@attrs.define
class PostgresScheduleStore:
    """`ScheduleStore` on PostgreSQL."""

    store: PostgresStore

    def _row(self, schedule: Schedule, next_fire: datetime | None) -> dict[str, Any]:
        return {
            "id": schedule.id,
            "job": schedule.job,
            "definition": Jsonb(encode_schedule(schedule)),
            "next": next_fire,
            "channel": self.store.schedule_channel,
        }

    async def sync_declared(self, schedules: Sequence[Schedule], now: datetime) -> None:
        """See `ScheduleStore.sync_declared`: one transaction of three statements."""
        wanted = [s.id for s in schedules]
        async with self.store.connection("sync schedules") as conn, conn.transaction():
            cur = await conn.execute(
                self.store.q("SELECT id, runs FROM {s}.schedules WHERE id = ANY(%s::text[])"),
                [wanted],
            )
            runs = {row["id"]: row["runs"] for row in await cur.fetchall()}
            rows = [
                {
                    "id": schedule.id,
                    "job": schedule.job,
                    "definition": encode_schedule(schedule),
                    "next": iso(schedule.next_fire(now, runs.get(schedule.id, 0))),
                }
                for schedule in schedules
            ]
            cur = await conn.execute(
                self.store.q(
                    "INSERT INTO {s}.schedules AS t (id, job, definition, declared, next_fire) "
                    "SELECT x.id, x.job, x.definition, true, x.next "
                    "FROM jsonb_to_recordset(%s) AS x(id text, job text, definition jsonb, "
                    "next timestamptz) "
                    "ON CONFLICT (id) DO UPDATE SET job = EXCLUDED.job, "
                    "definition = EXCLUDED.definition, declared = true, "
                    "next_fire = EXCLUDED.next_fire, version = t.version + 1 "
                    "WHERE t.definition IS DISTINCT FROM EXCLUDED.definition "
                    "OR NOT t.declared"
                ),
                [Jsonb(rows)],
            )
            changed = cur.rowcount
            cur = await conn.execute(
                self.store.q(
                    "DELETE FROM {s}.schedules WHERE declared AND NOT (id = ANY(%s::text[]))"
                ),
                [wanted],
            )
            changed += cur.rowcount
            if changed:
                await conn.execute("SELECT pg_notify(%s, '')", [self.store.schedule_channel])

    async def create(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """See `ScheduleStore.create`."""
        row = await self.store.fetch_one(
            "create schedule",
            self.store.q(
                "WITH t AS (INSERT INTO {s}.schedules (id, job, definition, declared, next_fire) "
                "VALUES (%(id)s, %(job)s, %(definition)s, false, %(next)s) "
                "ON CONFLICT (id) DO NOTHING "
                "RETURNING id, definition, paused, declared, next_fire, last_fire, "
                "last_outcome, runs, version) "
                "SELECT t.*, pg_notify(%(channel)s, '') FROM t"
            ),
            self._row(schedule, schedule.next_fire(now)),
        )
        if row is None:
            raise ScheduleExistsError(schedule.id)
        return _state(row)

    async def update(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """See `ScheduleStore.update`."""
        current = await self.get(schedule.id)
        params = self._row(schedule, schedule.next_fire(now, current.runs))
        row = await self.store.fetch_one(
            "update schedule",
            self.store.q(
                "WITH t AS (UPDATE {s}.schedules SET job = %(job)s, definition = %(definition)s, "
                "next_fire = %(next)s, version = version + 1 WHERE id = %(id)s "
                "RETURNING id, definition, paused, declared, next_fire, last_fire, "
                "last_outcome, runs, version) "
                "SELECT t.*, pg_notify(%(channel)s, '') FROM t"
            ),
            params,
        )
        if row is None:
            raise ScheduleNotFoundError(schedule.id)
        return _state(row)

    async def delete(self, schedule_id: str) -> None:
        """See `ScheduleStore.delete` (the ledger stays for the retention)."""
        row = await self.store.fetch_one(
            "delete schedule",
            self.store.q(
                "WITH t AS (DELETE FROM {s}.schedules WHERE id = %s RETURNING id) "
                "SELECT t.id, pg_notify(%s, '') FROM t"
            ),
            [schedule_id, self.store.schedule_channel],
        )
        if row is None:
            raise ScheduleNotFoundError(schedule_id)

    async def get(self, schedule_id: str) -> ScheduleState:
        """See `ScheduleStore.get`."""
        row = await self.store.fetch_one(
            "schedule",
            self.store.q("SELECT {columns} FROM {s}.schedules WHERE id = %s", columns=STATE),
            [schedule_id],
        )
        if row is None:
            raise ScheduleNotFoundError(schedule_id)
        return _state(row)

    async def list(self, job: str | None = None) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.list`."""
        if job is None:
            query = self.store.q("SELECT {columns} FROM {s}.schedules ORDER BY id", columns=STATE)
            rows = await self.store.fetch("schedules", query)
        else:
            query = self.store.q(
                "SELECT {columns} FROM {s}.schedules WHERE job = %s ORDER BY id", columns=STATE
            )
            rows = await self.store.fetch("schedules", query, [job])
        return [_state(row) for row in rows]

    async def list_after(self, cursor: str | None = None, limit: int = 100) -> Page[ScheduleState]:
        """See `ScheduleStore.list_after`: one index range (schedules_order)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        rows = await self.store.fetch(
            "schedules",
            self.store.q(
                'SELECT {columns} FROM {s}.schedules WHERE id COLLATE "C" > %s '
                'ORDER BY id COLLATE "C" LIMIT %s',
                columns=STATE,
            ),
            [cursor or "", limit + 1],
        )
        states = [_state(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(tuple(states), states[-1].schedule.id if more else None)

    async def of_jobs(self, jobs: Sequence[str]) -> dict[str, builtins.list[ScheduleState]]:
        """See `ScheduleStore.of_jobs`: one query over the schedules_job index."""
        found: dict[str, builtins.list[ScheduleState]] = {job: [] for job in jobs}
        if not found:
            return found
        rows = await self.store.fetch(
            "schedules",
            self.store.q(
                "SELECT job, {columns} FROM {s}.schedules WHERE job = ANY(%s::text[]) "
                'ORDER BY job, id COLLATE "C"',
                columns=STATE,
            ),
            [list(found)],
        )
        for row in rows:
            found[row["job"]].append(_state(row))
        return found

    async def set_paused(self, schedule_id: str, *, paused: bool) -> ScheduleState:
        """See `ScheduleStore.set_paused`."""
        row = await self.store.fetch_one(
            "pause schedule",
            self.store.q(
                "WITH t AS (UPDATE {s}.schedules SET paused = %s, version = version + 1 "
                "WHERE id = %s RETURNING id, definition, paused, declared, next_fire, "
                "last_fire, last_outcome, runs, version) "
                "SELECT t.*, pg_notify(%s, '') FROM t"
            ),
            [paused, schedule_id, self.store.schedule_channel],
        )
        if row is None:
            raise ScheduleNotFoundError(schedule_id)
        return _state(row)

    async def due(self, now: datetime, limit: int = 100) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.due`."""
        rows = await self.store.fetch(
            "due schedules",
            self.store.q(
                "SELECT {columns} FROM {s}.schedules WHERE next_fire <= %s "
                "ORDER BY next_fire, id LIMIT %s",
                columns=STATE,
            ),
            [now, limit],
        )
        return [_state(row) for row in rows]

    async def next_due_at(self) -> datetime | None:
        """See `ScheduleStore.next_due_at`: a schedule claimed and not fired since (its version
        unchanged) is due again when its claim ends, as in Redis's due index."""
        row = await self.store.fetch_one(
            "next due",
            self.store.q(
                "SELECT min(CASE WHEN claimed_version = version "
                "THEN greatest(next_fire, claimed_until) ELSE next_fire END) AS next "
                "FROM {s}.schedules"
            ),
        )
        return utc(row["next"]) if row and row["next"] else None

    async def claim_due(
        self, now: datetime, limit: int = 100, lease: timedelta = timedelta(seconds=5)
    ) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.claim_due`: one statement (``FOR UPDATE SKIP LOCKED``, so
        schedulers claiming at once take different rows)."""
        rows = await self.store.fetch(
            "claim due schedules",
            self.store.q(
                "WITH c AS (SELECT id FROM {s}.schedules WHERE next_fire <= %(now)s "
                "AND (claimed_until IS NULL OR claimed_until <= %(now)s "
                "OR claimed_version IS DISTINCT FROM version) "
                "ORDER BY next_fire, id LIMIT %(n)s FOR UPDATE SKIP LOCKED) "
                "UPDATE {s}.schedules AS t SET claimed_until = %(until)s, "
                "claimed_version = t.version FROM c WHERE t.id = c.id RETURNING {columns}",
                columns=CLAIMED,
            ),
            {"now": now, "n": limit, "until": now + lease},
        )
        states = [_state(row) for row in rows]
        states.sort(key=lambda s: (s.next_fire or now, s.schedule.id))
        return states

    async def fire(
        self,
        state: ScheduleState,
        decisions: Sequence[SlotDecision],
        requests: Sequence[EnqueueRequest],
        next_fire: datetime | None,
        now: datetime,
        *,
        bulk_missed: int = 0,
    ) -> builtins.list[Enqueued] | None:
        """See `ScheduleStore.fire`: one call of the ``fire`` function."""
        fire = PlannedFire(state, tuple(decisions), tuple(requests), next_fire, bulk_missed)
        return (await self.fire_many([fire], now))[0]

    def _item(self, i: int, fire: PlannedFire) -> dict[str, Any]:
        runs = [run_item(new_run_id(), r, self.store.payload_limit) for r in fire.requests]
        ledger: builtins.list[dict[str, Any]] = []
        index = 0
        for n, decision in enumerate(fire.decisions):
            entry: dict[str, Any] = {
                "slot": iso(decision.slot),
                "outcome": decision.outcome.value,
                "index": -1,
            }
            if decision.fires:
                entry["index"] = index
                index += 1
            if n == 0 and fire.bulk_missed > 1:
                entry["count"] = fire.bulk_missed
            ledger.append(entry)
        last = fire.decisions[-1] if fire.decisions else None
        return {
            "i": i,
            "id": fire.state.schedule.id,
            "version": fire.state.version,
            "next": iso(fire.next_fire),
            "fired": len(fire.requests),
            "last": iso(last.slot) if last else None,
            "outcome": last.outcome.value if last else None,
            "ledger": ledger,
            "runs": runs,
        }

    async def fire_many(
        self, fires: Sequence[PlannedFire], now: datetime
    ) -> builtins.list[builtins.list[Enqueued] | None]:
        """See `ScheduleStore.fire_many`: one statement calls the ``fire`` function for
        every item."""
        if not fires:
            return []
        notify = self.store.wakes.inline()
        rows = await self.store.fetch(
            "fire",
            self.store.q(
                "SELECT x.i, {s}.fire(x.id, x.version, %(now)s, x.next, x.fired, x.last, "
                "x.outcome, %(retention)s, x.ledger, x.runs, %(notify)s, %(channel)s) AS run_ids "
                "FROM jsonb_to_recordset(%(batch)s) AS x(i integer, id text, version bigint, "
                "next timestamptz, fired integer, last timestamptz, outcome text, ledger jsonb, "
                "runs jsonb) ORDER BY x.i"
            ),
            {
                "now": now,
                "retention": self.store.retention,
                "notify": notify,
                "channel": self.store.wake_channel,
                "batch": Jsonb([self._item(i, f) for i, f in enumerate(fires)]),
            },
        )
        answers: builtins.list[builtins.list[Enqueued] | None] = [None] * len(fires)
        ready = False
        for row in rows:
            if row["run_ids"] is None:
                continue
            answers[row["i"]] = [Enqueued(run_id) for run_id in row["run_ids"]]
            requests = fires[row["i"]].requests
            ready = ready or (
                bool(row["run_ids"]) and any(r.run_at is None or r.run_at <= now for r in requests)
            )
        if ready and not notify:
            self.store.wakes.later()
        return answers

    async def slots(
        self, schedule_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[SlotRecord]:
        """See `ScheduleStore.slots`. The cursor is ``"<slot in µs>:0"`` (one record per slot)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, Any] = {"id": schedule_id, "n": limit + 1}
        after = "true"
        if cursor:
            params["before"], _ = parse_cursor(cursor)
            after = "slot < %(before)s"
        query = self.store.q(
            "SELECT slot, outcome, run_id, recorded_at, covers FROM {s}.slots "
            "WHERE schedule_id = %(id)s AND {after} ORDER BY slot DESC LIMIT %(n)s",
            after=after,
        )
        rows = await self.store.fetch("slots", query, params)
        records = tuple(
            SlotRecord(
                schedule_id=schedule_id,
                slot=utc(row["slot"]),
                outcome=SlotOutcome(row["outcome"]),
                recorded_at=utc(row["recorded_at"]),
                run_id=row["run_id"],
                count=row["covers"],
            )
            for row in rows[:limit]
        )
        next_cursor = make_cursor(records[-1].slot, 0) if len(rows) > limit else None
        return Page(records, next_cursor)
