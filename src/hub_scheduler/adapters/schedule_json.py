"""Schedule definitions as versioned JSON objects, the same shape in every backend that stores
them (Redis as a string, PostgreSQL as jsonb); runtime state is kept beside them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _opt_ms(value: datetime | None) -> int | None:
    return None if value is None else _ms(value)


def _opt_dt(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + int(value) * _MS


def _trigger_to_json(trigger: ScheduleTrigger) -> dict[str, Any]:
    if isinstance(trigger, Cron):
        return {"type": "cron", "expression": trigger.expression, "timezone": trigger.timezone}
    if isinstance(trigger, Every):
        return {
            "type": "every",
            "interval_ms": trigger.interval // _MS,
            "anchor": _opt_ms(trigger.anchor),
        }
    return {"type": "once", "at": _ms(trigger.at)}


def _trigger_from_json(data: Mapping[str, Any]) -> ScheduleTrigger:
    kind = data["type"]
    if kind == "cron":
        return Cron(data["expression"], data["timezone"])
    if kind == "every":
        return Every(timedelta(milliseconds=data["interval_ms"]), _opt_dt(data.get("anchor")))
    if kind == "once":
        return Once(_EPOCH + int(data["at"]) * _MS)
    raise ValueError(f"unknown trigger type {kind!r}")


def schedule_to_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule's definition as a JSON object (instants in epoch milliseconds)."""
    return {
        "v": FORMAT_VERSION,
        "id": schedule.id,
        "job": schedule.job,
        "trigger": _trigger_to_json(schedule.trigger),
        "start": _opt_ms(schedule.start),
        "end": _opt_ms(schedule.end),
        "max_runs": schedule.max_runs,
        "misfire": {
            "kind": schedule.misfire.kind.value,
            "grace_ms": schedule.misfire.grace // _MS,
            "max_runs": schedule.misfire.max_runs,
        },
        "payload": dict(schedule.payload),
    }


def schedule_from_json(data: Mapping[str, Any]) -> Schedule:
    """A schedule from its JSON definition. Raises `ValueError` for an unknown version."""
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
