"""How domain values are stored in Redis: versioned, flat string fields and JSON, never pickle.

A run is a hash. Its field names are short because history keeps one per run for 90 days:

==== ============================  ==== =====================================
v    format version (1)            sta  started, ms since the epoch
job  job name                      fin  finished, ms
st   `RunState` value              wrk  worker id
pri  priority number               tok  fencing token (grows with each claim)
att  attempt number                trg  `RunTrigger` value
enq  enqueued, ms                  pl   payload, JSON object
due  not before, ms (if waiting)   err  last error, JSON {type, message, traceback}
stl  stalls                        sch  schedule id; slot: slot ms
idk  idempotency key               org  run id this one retries (dead-letter retry)
==== ============================  ==== =====================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hub_scheduler.domain.model import ErrorInfo, Priority, Run, RunState, RunTrigger

FORMAT_VERSION = "1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(instant: datetime) -> int:
    """Milliseconds since the epoch of an aware instant (exact integer arithmetic)."""
    return (instant - EPOCH) // _MS


def from_ms(ms: int | str | bytes) -> datetime:
    """The aware UTC instant `ms` milliseconds after the epoch."""
    return EPOCH + int(float(ms)) * _MS


def to_text(value: bytes | str) -> str:
    """Redis replies arrive as bytes; every stored value is UTF-8 text."""
    return value.decode() if isinstance(value, bytes) else value


def encode_error(error: ErrorInfo) -> str:
    """An error summary as JSON."""
    return json.dumps(
        {"type": error.type, "message": error.message, "traceback": error.traceback},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _decode_error(text: str | None) -> ErrorInfo | None:
    if not text:
        return None
    data: dict[str, Any] = json.loads(text)
    return ErrorInfo(data["type"], data["message"], data.get("traceback", ""))


def _opt_ms(fields: Mapping[str, str], name: str) -> datetime | None:
    value = fields.get(name)
    return from_ms(value) if value else None


def decode_run(run_id: str, fields: Mapping[str, str]) -> tuple[Run, int]:
    """A run and its fencing token from its stored fields."""
    version = fields.get("v")
    if version != FORMAT_VERSION:
        raise ValueError(f"run {run_id}: unsupported stored format version {version!r}")
    run = Run(
        id=run_id,
        job=fields["job"],
        state=RunState(fields["st"]),
        enqueued_at=from_ms(fields["enq"]),
        payload=json.loads(fields.get("pl", "{}")),
        priority=Priority(int(fields["pri"])),
        trigger=RunTrigger(fields.get("trg", RunTrigger.MANUAL.value)),
        attempt=int(fields.get("att", "1")),
        run_at=_opt_ms(fields, "due"),
        started_at=_opt_ms(fields, "sta"),
        finished_at=_opt_ms(fields, "fin"),
        worker=fields.get("wrk") or None,
        error=_decode_error(fields.get("err")),
        stalls=int(fields.get("stl", "0")),
        schedule_id=fields.get("sch") or None,
        slot=_opt_ms(fields, "slot"),
        idempotency_key=fields.get("idk") or None,
        origin_run_id=fields.get("org") or None,
    )
    return run, int(fields.get("tok", "0"))
