"""Schedules as versioned JSON strings (definitions) — the runtime state lives in a hash beside
it. The shape is shared with the other backends (`hub_scheduler.adapters.schedule_json`)."""

from __future__ import annotations

import json

from hub_scheduler.adapters.schedule_json import schedule_from_json, schedule_to_json
from hub_scheduler.domain.schedule import Schedule


def encode_schedule(schedule: Schedule) -> str:
    """A schedule's definition as JSON text."""
    return json.dumps(schedule_to_json(schedule), separators=(",", ":"), ensure_ascii=False)


def decode_schedule(text: str | bytes) -> Schedule:
    """A schedule from its JSON definition."""
    return schedule_from_json(json.loads(text))
