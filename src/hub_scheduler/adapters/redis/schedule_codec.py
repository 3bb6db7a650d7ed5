"""Schedules as versioned JSON (definitions) — the runtime state lives in a hash beside it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hub_scheduler.adapters.redis.codec import from_ms, to_ms
from hub_scheduler.domain.schedule import (
    Cron,
    Every,
    MisfireKind,
    MisfirePolicy,
    Once,
    Schedule,
    ScheduleTrigger,
)

FORMAT_VERSION = 1


def _opt_ms(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


def _opt_dt(value: int | None) -> datetime | None:
    return None if value is None else from_ms(value)


def _trigger_to_json(trigger: ScheduleTrigger) -> dict[str, Any]:
    if isinstance(trigger, Cron):
        return {"type": "cron", "expression": trigger.expression, "timezone": trigger.timezone}
    if isinstance(trigger, Every):
        return {
            "type": "every",
            "interval_ms": trigger.interval // timedelta(milliseconds=1),
            "anchor": _opt_ms(trigger.anchor),
        }
    return {"type": "once", "at": to_ms(trigger.at)}


def _trigger_from_json(data: dict[str, Any]) -> ScheduleTrigger:
    kind = data["type"]
    if kind == "cron":
        return Cron(data["expression"], data["timezone"])
    if kind == "every":
        return Every(timedelta(milliseconds=data["interval_ms"]), _opt_dt(data.get("anchor")))
    if kind == "once":
        return Once(from_ms(data["at"]))
    raise ValueError(f"unknown trigger type {kind!r}")


def encode_schedule(schedule: Schedule) -> str:
    """A schedule's definition as JSON."""
    return json.dumps(
        {
            "v": FORMAT_VERSION,
            "id": schedule.id,
            "job": schedule.job,
            "trigger": _trigger_to_json(schedule.trigger),
            "start": _opt_ms(schedule.start),
            "end": _opt_ms(schedule.end),
            "max_runs": schedule.max_runs,
            "misfire": {
                "kind": schedule.misfire.kind.value,
                "grace_ms": schedule.misfire.grace // timedelta(milliseconds=1),
                "max_runs": schedule.misfire.max_runs,
            },
            "payload": dict(schedule.payload),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_schedule(text: str | bytes) -> Schedule:
    """A schedule from its JSON definition."""
    data: dict[str, Any] = json.loads(text)
    if data.get("v") != FORMAT_VERSION:
        raise ValueError(f"unsupported schedule format version {data.get('v')!r}")
    misfire = data["misfire"]
    return Schedule(
        trigger=_trigger_from_json(data["trigger"]),
        job=data["job"],
        id=data["id"],
        start=_opt_dt(data.get("start")),
        end=_opt_dt(data.get("end")),
        max_runs=data.get("max_runs"),
        misfire=MisfirePolicy(
            MisfireKind(misfire["kind"]),
            timedelta(milliseconds=misfire["grace_ms"]),
            misfire["max_runs"],
        ),
        payload=data.get("payload") or {},
    )
