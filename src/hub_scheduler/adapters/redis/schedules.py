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
    PlannedFire,
    ScheduleState,
    SlotRecord,
)
from hub_scheduler.domain.schedule import Schedule, SlotDecision, SlotOutcome

#: Schedules written per script call by `RedisScheduleStore.sync_declared`.
SYNC_BATCH = 1000
#: Schedules read per script call.
LOAD_BATCH = 1000
#: Decoded definitions kept (by their JSON text) before the cache starts over.
CACHE_LIMIT = 100_000


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


def _state_of(schedule: Schedule, fields: dict[str, str]) -> ScheduleState:
    outcome = fields.get("outcome")
    return ScheduleState(
        schedule=schedule,
        next_fire=from_ms(fields["next"]) if fields.get("next") else None,
        paused=fields.get("paused") == "1",
        declared=fields.get("declared") == "1",
        last_fire=from_ms(fields["last"]) if fields.get("last") else None,
        last_outcome=SlotOutcome(outcome) if outcome else None,
        runs=int(fields.get("runs", "0")),
        version=int(fields.get("ver", "0")),
    )


def _fire_item(fire: PlannedFire) -> builtins.list[Any]:
    """One schedule of a fire.lua batch."""
    ledger: builtins.list[builtins.list[str]] = []
    index = 0
    for i, decision in enumerate(fire.decisions):
        entry = [str(to_ms(decision.slot)), decision.outcome.value, "-1"]
        if decision.fires:
            entry[2] = str(index)
            index += 1
        if i == 0 and fire.bulk_missed > 1:
            entry.append(str(fire.bulk_missed))
        ledger.append(entry)
    runs = [_run_args(new_run_id(), request) for request in fire.requests]
    last = fire.decisions[-1] if fire.decisions else None
    return [
        fire.state.schedule.id,
        str(fire.state.version),
        _next_ms(fire.next_fire),
        len(fire.requests),
        _next_ms(last.slot if last else None),
        last.outcome.value if last else "",
        ledger,
        runs,
    ]


@attrs.define
class RedisScheduleStore:
    """`ScheduleStore` on Redis (and fakeredis for ``memory://``)."""

    store: RedisStore
    _schedules: dict[str, Schedule] = attrs.field(factory=dict, init=False, repr=False)

    async def _call(self, operation: str, coro: Any) -> Any:
        try:
            return await coro
        except RedisError as exc:
            raise BackendUnavailableError(operation, type(exc).__name__) from exc

    async def _write(self, schedule: Schedule, next_fire: datetime | None, *, declared: bool,
                     mode: str) -> str:  # fmt: skip
        flag = "1" if declared else "0"
        reply = await self.store.run(
            "upsert_schedule", mode, schedule.id, encode_schedule(schedule), _next_ms(next_fire),
            flag,
        )  # fmt: skip
        return to_text(reply[0])

    async def sync_declared(self, schedules: Sequence[Schedule], now: datetime) -> None:
        """See `ScheduleStore.sync_declared`: in bulk. One script call per `SYNC_BATCH`
        finds the schedules that differ from the stored ones (with their run counts), one
        more writes those; an unchanged schedule costs no next-fire computation, and the
        stored ids are read only when some of them are no longer declared."""
        keys = self.store.keys
        known = 0
        for start in range(0, len(schedules), SYNC_BATCH):
            chunk = schedules[start : start + SYNC_BATCH]
            definitions = [encode_schedule(schedule) for schedule in chunk]
            asked: builtins.list[str] = []
            for schedule, definition in zip(chunk, definitions, strict=True):
                asked += [schedule.id, definition, "1"]
            answers = json.loads(await self.store.run("compare_schedules", *asked))
            args: builtins.list[str] = []
            for schedule, definition, answer in zip(chunk, definitions, answers, strict=True):
                known += answer != "new"
                if answer:
                    runs = 0 if answer == "new" else int(answer)
                    args += [schedule.id, definition, _next_ms(schedule.next_fire(now, runs)), "1"]
            if args:
                await self.store.run("upsert_schedule", "sync", *args)
        client = self.store.client
        if await self._call("sync schedules", client.scard(keys.schedule_ids)) <= known:
            return  # every stored schedule is declared (ids are unique)
        stored = {to_text(i) for i in await self._call(
            "sync schedules", client.smembers(keys.schedule_ids)
        )}  # fmt: skip
        wanted = {s.id for s in schedules}
        stale = sorted(stored - wanted)
        if stale:
            async with self.store.client.pipeline(transaction=False) as pipe:
                for schedule_id in stale:
                    pipe.hget(keys.schedule_state(schedule_id), "declared")
                flags = await self._call("sync schedules", pipe.execute())
            for schedule_id, flag in zip(stale, flags, strict=True):
                if flag is not None and to_text(flag) == "1":
                    with contextlib.suppress(ScheduleNotFoundError):
                        await self.delete(schedule_id)

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
        states: builtins.list[ScheduleState] = []
        for start in range(0, len(ids), LOAD_BATCH):
            reply = await self.store.run("load_schedules", *ids[start : start + LOAD_BATCH])
            states += self._decode(reply)
        return states

    def _decode(self, reply: bytes | str) -> builtins.list[ScheduleState]:
        """States from a ``[[id, definition, [field, value, ...]], ...]`` JSON reply; a
        definition seen before is decoded once."""
        states = []
        cache = self._schedules
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        for _, definition, flat in json.loads(reply):
            schedule = cache.get(definition)
            if schedule is None:
                schedule = cache[definition] = decode_schedule(definition)
            fields = dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}
            states.append(_state_of(schedule, fields))
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

    async def list_after(self, cursor: str | None = None, limit: int = 100) -> Page[ScheduleState]:
        """See `ScheduleStore.list_after`: one script call over the schedule-order index."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        reply, more = await self.store.run("page_schedules", "after", cursor or "", limit)
        states = self._decode(reply)
        return Page(tuple(states), states[-1].schedule.id if int(more) and states else None)

    async def of_jobs(self, jobs: Sequence[str]) -> dict[str, builtins.list[ScheduleState]]:
        """See `ScheduleStore.of_jobs`: one script call over the schedule-jobs index."""
        found: dict[str, builtins.list[ScheduleState]] = {job: [] for job in jobs}
        if not found:
            return found
        reply, _ = await self.store.run("page_schedules", "jobs", *found)
        for state in self._decode(reply):
            if state.schedule.job in found:
                found[state.schedule.job].append(state)
        return found

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

    async def claim_due(
        self, now: datetime, limit: int = 100, lease: timedelta = timedelta(seconds=5)
    ) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.claim_due`: one script call claims and reads the batch."""
        reply = await self.store.run("claim_due", to_ms(now), to_ms(now + lease), limit)
        return self._decode(reply)

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
        fire = PlannedFire(state, tuple(decisions), tuple(requests), next_fire, bulk_missed)
        return (await self.fire_many([fire], now))[0]

    async def fire_many(
        self, fires: Sequence[PlannedFire], now: datetime
    ) -> builtins.list[builtins.list[Enqueued] | None]:
        """See `ScheduleStore.fire_many`: one script call."""
        if not fires:
            return []
        reply = await self.store.run(
            "fire",
            to_ms(now),
            self.store.retention // timedelta(milliseconds=1),
            json.dumps([_fire_item(f) for f in fires], ensure_ascii=False),
        )
        return [
            None if isinstance(answer, int) else [Enqueued(to_text(r)) for r in answer if r]
            for answer in reply
        ]

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
