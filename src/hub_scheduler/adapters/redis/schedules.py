"""`ScheduleStore` on Redis: definitions, runtime state, the due index and the slot ledger."""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import attrs
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.codec import from_ms, to_ms, to_text
from hub_scheduler.adapters.redis.schedule_codec import decode_schedule, encode_schedule
from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    ScheduleExistsError,
    ScheduleNotFoundError,
)
from hub_scheduler.domain.model import new_run_id
from hub_scheduler.domain.ports import (
    Enqueued,
    EnqueueRequest,
    Page,
    ScheduleState,
    SlotRecord,
)
from hub_scheduler.domain.schedule import Schedule, SlotDecision, SlotOutcome


def _next_ms(value: datetime | None) -> str:
    return "" if value is None else str(to_ms(value))


def _run_args(run_id: str, request: EnqueueRequest) -> list[str]:
    """One run in the enqueue.lua batch format."""
    return [
        run_id,
        request.job,
        str(int(request.priority)),
        str(to_ms(request.run_at)) if request.run_at else "0",
        request.trigger.value,
        json.dumps(dict(request.payload), separators=(",", ":"), ensure_ascii=False),
        request.schedule_id or "",
        str(to_ms(request.slot)) if request.slot else "",
        "",
        "1",
        request.origin_run_id or "",
    ]


@attrs.define
class RedisScheduleStore:
    """`ScheduleStore` on Redis (and fakeredis for ``memory://``)."""

    store: RedisStore

    async def _call(self, operation: str, coro: Any) -> Any:
        try:
            return await coro
        except RedisError as exc:
            raise BackendUnavailableError(operation, type(exc).__name__) from exc

    async def _write(self, schedule: Schedule, next_fire: datetime | None, *, declared: bool,
                     mode: str) -> str:  # fmt: skip
        flag = "1" if declared else "0"
        reply = await self.store.run(
            "upsert_schedule",
            schedule.id,
            encode_schedule(schedule),
            _next_ms(next_fire),
            flag,
            mode,
        )
        return to_text(reply)

    async def sync_declared(self, schedules: Sequence[Schedule], now: datetime) -> None:
        """See `ScheduleStore.sync_declared`."""
        wanted = {s.id for s in schedules}
        for schedule in schedules:
            runs = 0
            with contextlib.suppress(ScheduleNotFoundError):
                runs = (await self.get(schedule.id)).runs
            await self._write(schedule, schedule.next_fire(now, runs), declared=True, mode="sync")
        for state in await self.list():
            if state.declared and state.schedule.id not in wanted:
                await self.delete(state.schedule.id)

    async def create(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """See `ScheduleStore.create`."""
        if await self._write(schedule, schedule.next_fire(now), declared=False, mode="create") == (
            "exists"
        ):
            raise ScheduleExistsError(schedule.id)
        return await self.get(schedule.id)

    async def update(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """See `ScheduleStore.update`."""
        current = await self.get(schedule.id)
        next_fire = schedule.next_fire(now, current.runs)
        if await self._write(schedule, next_fire, declared=current.declared, mode="update") == (
            "missing"
        ):
            raise ScheduleNotFoundError(schedule.id)
        return await self.get(schedule.id)

    async def _admin(self, schedule_id: str, action: str) -> None:
        if not int(await self.store.run("schedule_admin", schedule_id, action)):
            raise ScheduleNotFoundError(schedule_id)

    async def delete(self, schedule_id: str) -> None:
        """See `ScheduleStore.delete`."""
        await self._admin(schedule_id, "delete")

    async def set_paused(self, schedule_id: str, *, paused: bool) -> ScheduleState:
        """See `ScheduleStore.set_paused`."""
        await self._admin(schedule_id, "pause" if paused else "resume")
        return await self.get(schedule_id)

    async def _load(self, ids: Sequence[str]) -> builtins.list[ScheduleState]:
        keys = self.store.keys
        async with self.store.client.pipeline(transaction=False) as pipe:
            for schedule_id in ids:
                pipe.get(keys.schedule(schedule_id))
                pipe.hgetall(keys.schedule_state(schedule_id))
            replies = await self._call("load schedules", pipe.execute())
        states = []
        for i in range(0, len(replies), 2):
            definition, raw = replies[i], replies[i + 1]
            if definition is None:
                continue
            fields = {to_text(k): to_text(v) for k, v in raw.items()}
            outcome = fields.get("outcome")
            states.append(
                ScheduleState(
                    schedule=decode_schedule(definition),
                    next_fire=from_ms(fields["next"]) if fields.get("next") else None,
                    paused=fields.get("paused") == "1",
                    declared=fields.get("declared") == "1",
                    last_fire=from_ms(fields["last"]) if fields.get("last") else None,
                    last_outcome=SlotOutcome(outcome) if outcome else None,
                    runs=int(fields.get("runs", "0")),
                    version=int(fields.get("ver", "0")),
                )
            )
        return states

    async def get(self, schedule_id: str) -> ScheduleState:
        """See `ScheduleStore.get`."""
        states = await self._load([schedule_id])
        if not states:
            raise ScheduleNotFoundError(schedule_id)
        return states[0]

    async def list(self, job: str | None = None) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.list`."""
        raw = await self._call(
            "list schedules", self.store.client.smembers(self.store.keys.schedule_ids)
        )
        states = await self._load(sorted(to_text(i) for i in raw))
        return [s for s in states if job is None or s.schedule.job == job]

    async def due(self, now: datetime, limit: int = 100) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.due`."""
        ids = await self._call(
            "due schedules",
            self.store.client.zrangebyscore(
                self.store.keys.schedules_due, "-inf", to_ms(now), start=0, num=limit
            ),
        )
        return await self._load([to_text(i) for i in ids])

    async def next_due_at(self) -> datetime | None:
        """See `ScheduleStore.next_due_at`."""
        rows = cast(
            "builtins.list[tuple[bytes, float]]",
            await self._call(
                "next due",
                self.store.client.zrange(self.store.keys.schedules_due, 0, 0, withscores=True),
            ),
        )
        return from_ms(int(rows[0][1])) if rows else None

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
        """See `ScheduleStore.fire`. With `bulk_missed`, the first decision stands for that
        many missed slots (a long outage's oldest ones)."""
        run_ids = [new_run_id() for _ in requests]
        ledger: builtins.list[builtins.list[str]] = []
        index = 0
        for i, decision in enumerate(decisions):
            entry = [str(to_ms(decision.slot)), decision.outcome.value, "-1"]
            if decision.fires:
                entry[2] = str(index)
                index += 1
            if i == 0 and bulk_missed > 1:
                entry.append(str(bulk_missed))
            ledger.append(entry)
        runs = [_run_args(rid, request) for rid, request in zip(run_ids, requests, strict=True)]
        last = decisions[-1].slot if decisions else None
        reply = await self.store.run(
            "fire",
            state.schedule.id,
            str(state.version),
            to_ms(now),
            _next_ms(next_fire),
            len(requests),
            _next_ms(last),
            decisions[-1].outcome.value if decisions else "",
            self.store.retention // timedelta(milliseconds=1),
            json.dumps(ledger),
            json.dumps(runs, ensure_ascii=False),
        )
        if reply is None:
            return None
        return [Enqueued(to_text(r)) for r in reply if to_text(r)]

    async def slots(
        self, schedule_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[SlotRecord]:
        """See `ScheduleStore.slots`."""
        members, next_cursor = await self.store.page_desc(
            self.store.keys.ledger(schedule_id), cursor, limit
        )
        records = []
        for member in members:
            data = json.loads(member)
            records.append(
                SlotRecord(
                    schedule_id=schedule_id,
                    slot=from_ms(data["s"]),
                    outcome=SlotOutcome(data["o"]),
                    recorded_at=from_ms(data["a"]),
                    run_id=data["r"] or None,
                    count=int(data.get("n", "1")),
                )
            )
        return Page(tuple(records), next_cursor)
