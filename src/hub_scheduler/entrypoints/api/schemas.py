"""Request bodies (validated by pydantic, unknown fields refused) and response shaping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs
from pydantic import BaseModel, ConfigDict, Field

from hub_scheduler.domain.errors import InvalidScheduleError
from hub_scheduler.domain.model import Run
from hub_scheduler.domain.ports import (
    JobStats,
    QueueSnapshot,
    ScheduleState,
    SlotRecord,
    WindowStats,
    WorkerInfo,
)
from hub_scheduler.domain.schedule import Cron, Every, MisfirePolicy, Once, Schedule

MAX_DELAY = timedelta(days=365).total_seconds()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerBody(_Body):
    """Run a job now (or after a delay)."""

    payload: dict[str, Any] | None = None
    priority: Literal["critical", "high", "normal", "low", 1, 5, 10, 15] | None = None
    delay_seconds: float | None = Field(default=None, ge=0, le=MAX_DELAY)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class NamedTriggerBody(TriggerBody):
    """`TriggerBody` naming the job."""

    name: str = Field(min_length=1, max_length=100)


class CleanBody(_Body):
    """Remove finished history older than an age."""

    older_than_days: float = Field(gt=0, le=3650)
    states: list[Literal["succeeded", "dead", "cancelled"]] | None = None


class MisfireBody(_Body):
    """A misfire policy."""

    kind: Literal["skip", "run_once", "catch_up"] = "skip"
    grace_seconds: float = Field(default=60, ge=0, le=86400 * 7)
    max_runs: int = Field(default=1, ge=1, le=1000)


class ScheduleBody(_Body):
    """A schedule created at runtime: exactly one of cron, every_seconds or at."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
    job: str = Field(min_length=1, max_length=100)
    cron: str | None = Field(default=None, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    every_seconds: float | None = Field(default=None, ge=1, le=86400 * 3650)
    at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = Field(default=None, ge=1)
    misfire: MisfireBody = Field(default_factory=MisfireBody)
    payload: dict[str, Any] = Field(default_factory=dict)


class SchedulePatch(_Body):
    """Fields to change on a schedule; the rest stay."""

    cron: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    every_seconds: float | None = Field(default=None, ge=1, le=86400 * 3650)
    at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = Field(default=None, ge=1)
    misfire: MisfireBody | None = None
    payload: dict[str, Any] | None = None


def misfire_policy(body: MisfireBody) -> MisfirePolicy:
    """The domain policy for a body."""
    grace = timedelta(seconds=body.grace_seconds)
    if body.kind == "catch_up":
        return MisfirePolicy.catch_up(body.max_runs, grace)
    if body.kind == "run_once":
        return MisfirePolicy.run_once(grace)
    return MisfirePolicy.skip(grace)


def schedule_from_body(body: ScheduleBody) -> Schedule:
    """The domain schedule for a creation body (domain errors explain bad values)."""
    given = [x is not None for x in (body.cron, body.every_seconds, body.at)]
    if sum(given) != 1:
        raise InvalidScheduleError("trigger", "give exactly one of cron, every_seconds or at")
    trigger: Cron | Every | Once
    if body.cron is not None:
        trigger = Cron(body.cron, body.timezone)
    elif body.every_seconds is not None:
        trigger = Every(timedelta(seconds=body.every_seconds))
    else:
        assert body.at is not None
        trigger = Once(body.at)
    return Schedule(
        trigger=trigger,
        job=body.job,
        id=body.id,
        start=body.start,
        end=body.end,
        max_runs=body.max_runs,
        misfire=misfire_policy(body.misfire),
        payload=body.payload,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _error_json(run: Run) -> dict[str, str] | None:
    if run.error is None:
        return None
    return {"type": run.error.type, "message": run.error.message, "traceback": run.error.traceback}


def run_json(run: Run) -> dict[str, Any]:
    """A run as the API shows it."""
    return {
        "id": run.id,
        "job": run.job,
        "state": run.state.value,
        "priority": int(run.priority),
        "trigger": run.trigger.value,
        "attempt": run.attempt,
        "payload": dict(run.payload),
        "enqueued_at": _iso(run.enqueued_at),
        "run_at": _iso(run.run_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": run.duration.total_seconds() if run.duration else None,
        "worker": run.worker,
        "stalls": run.stalls,
        "schedule_id": run.schedule_id,
        "slot": _iso(run.slot),
        "origin_run_id": run.origin_run_id,
        "error": None
        if run.error is None
        else {
            "type": run.error.type,
            "message": run.error.message,
            "traceback": run.error.traceback,
        },
    }


def schedule_json(state: ScheduleState) -> dict[str, Any]:
    """A schedule with its runtime state."""
    schedule = state.schedule
    return {
        "id": schedule.id,
        "job": schedule.job,
        "description": schedule.describe(),
        "timezone": schedule.timezone,
        "misfire": schedule.misfire.describe(),
        "paused": state.paused,
        "declared_in_code": state.declared,
        "next_fire": _iso(state.next_fire),
        "last_fire": _iso(state.last_fire),
        "last_outcome": state.last_outcome.value if state.last_outcome else None,
        "runs": state.runs,
        "payload": dict(schedule.payload),
    }


def slot_json(record: SlotRecord) -> dict[str, Any]:
    """One ledger record."""
    return {
        "slot": _iso(record.slot),
        "outcome": record.outcome.value,
        "run_id": record.run_id,
        "recorded_at": _iso(record.recorded_at),
        "count": record.count,
    }


def snapshot_json(snapshot: QueueSnapshot, workers: Sequence[WorkerInfo]) -> dict[str, Any]:
    """Queue health."""
    return {
        "depth": {p.name.lower(): n for p, n in snapshot.depth.items()},
        "waiting": snapshot.waiting,
        "parked": snapshot.parked,
        "delayed": snapshot.delayed,
        "active": snapshot.active,
        "dead_letters": snapshot.dead,
        "paused": snapshot.paused,
        "paused_jobs": sorted(snapshot.paused_jobs),
        "oldest_waiting_seconds": snapshot.oldest_waiting.total_seconds()
        if snapshot.oldest_waiting
        else None,
        "workers": [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "concurrency": w.concurrency,
                "active": w.active,
                "seen_at": _iso(w.seen_at),
            }
            for w in workers
        ],
    }


def patched_schedule(old: Schedule, patch: SchedulePatch) -> Schedule:
    """`old` with the fields `patch` sets (an explicit null clears start, end or max_runs)."""
    given = patch.model_fields_set
    trigger: Cron | Every | Once = old.trigger
    if patch.cron is not None:
        trigger = Cron(patch.cron, patch.timezone or old.timezone)
    elif patch.every_seconds is not None:
        trigger = Every(timedelta(seconds=patch.every_seconds))
    elif patch.at is not None:
        trigger = Once(patch.at)
    elif patch.timezone is not None and isinstance(trigger, Cron):
        trigger = Cron(trigger.expression, patch.timezone)
    return attrs.evolve(
        old,
        trigger=trigger,
        start=patch.start if "start" in given else old.start,
        end=patch.end if "end" in given else old.end,
        max_runs=patch.max_runs if "max_runs" in given else old.max_runs,
        misfire=misfire_policy(patch.misfire) if patch.misfire is not None else old.misfire,
        payload=patch.payload if patch.payload is not None else old.payload,
    )


def _window_json(window: WindowStats) -> dict[str, Any]:
    return {
        "succeeded": window.succeeded,
        "failed": window.failed,
        "dead": window.dead,
        "success_rate": window.success_rate,
        "duration_p50_seconds": window.p50.total_seconds() if window.p50 else None,
        "duration_p95_seconds": window.p95.total_seconds() if window.p95 else None,
    }


def stats_json(stats: JobStats) -> dict[str, Any]:
    """A job's statistics: windows, hourly trend and last success."""
    return {
        "job": stats.job,
        "windows": {name: _window_json(w) for name, w in stats.windows.items()},
        "hourly": [
            {"hour": _iso(h.hour), "succeeded": h.succeeded, "failed": h.failed, "dead": h.dead}
            for h in stats.hourly
        ],
        "last_success": _iso(stats.last_success),
    }
