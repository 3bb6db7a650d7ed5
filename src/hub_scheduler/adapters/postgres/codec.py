"""How domain values map to PostgreSQL rows: typed columns, JSON (jsonb) for payloads, errors
and schedule definitions (versioned, ``{"v": 1, ...}``), never pickle.

Cursors are ``"<microseconds since the epoch>:<sequence number>"``: the position of the last
item of a page in an index ordered by (instant, sequence), so paging stays exact however many
items share one instant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, LiteralString

from hub_scheduler.adapters.schedule_json import schedule_from_json, schedule_to_json
from hub_scheduler.domain.errors import InvalidCursorError, PayloadError
from hub_scheduler.domain.model import (
    Attempt,
    AttemptOutcome,
    ErrorInfo,
    Priority,
    Run,
    RunState,
    RunTrigger,
    stored_trace_context,
)

FORMAT_VERSION = 1
#: The version of each entry of a run's attempt log (``runs.attempts``; see
#: migrations/0002_attempts_and_histograms.sql).
ATTEMPT_VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MS = timedelta(milliseconds=1)
_CURSOR = re.compile(r"(-?[0-9]+):([0-9]+)")
# A JSON \u0000 escape that is not itself an escaped backslash followed by "u0000".
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")

#: The columns of a run that `decode_run` reads (and a claim's token).
RUN_COLUMNS: Final[LiteralString] = (
    "id, job, state, priority, attempt, enqueued_at, triggered_by, payload, run_at, "
    "started_at, finished_at, worker, error, stalls, token, schedule_id, slot, "
    "idempotency_key, origin_run_id, attempts, attempts_dropped, cancel_requested_at, "
    "trace_context, first_attempt_trace, workflow_id, workflow_step"
)
#: The same, of the table aliased ``r``.
RUN_COLUMNS_R: Final[LiteralString] = (
    "r.id, r.job, r.state, r.priority, r.attempt, r.enqueued_at, r.triggered_by, r.payload, "
    "r.run_at, r.started_at, r.finished_at, r.worker, r.error, r.stalls, r.token, "
    "r.schedule_id, r.slot, r.idempotency_key, r.origin_run_id, r.attempts, r.attempts_dropped, "
    "r.cancel_requested_at, r.trace_context, r.first_attempt_trace, r.workflow_id, "
    "r.workflow_step"
)


def utc(value: datetime) -> datetime:
    """An instant read from the database, in UTC (whatever the session's time zone)."""
    return value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def to_us(instant: datetime) -> int:
    """Microseconds since the epoch of an aware instant (exact integer arithmetic)."""
    return (instant - EPOCH) // _US


def from_us(us: int) -> datetime:
    """The aware UTC instant `us` microseconds after the epoch."""
    return EPOCH + us * _US


def iso(instant: datetime | None) -> str | None:
    """An instant as ISO 8601 text for a JSON parameter (PostgreSQL reads it back exactly)."""
    return None if instant is None else instant.isoformat()


def make_cursor(instant: datetime, seq: int) -> str:
    """The cursor that continues after the item at (`instant`, `seq`)."""
    return f"{to_us(instant)}:{seq}"


def parse_cursor(cursor: str) -> tuple[datetime, int]:
    """The (instant, sequence) a cursor points after. Raises `InvalidCursorError`."""
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise InvalidCursorError(cursor)
    try:
        instant, seq = from_us(int(match.group(1))), int(match.group(2))
    except OverflowError:
        raise InvalidCursorError(cursor) from None
    if not 0 <= seq < 2**63:  # a bigint column: anything else was never handed out
        raise InvalidCursorError(cursor)
    return instant, seq


def has_nul(text: str) -> bool:
    """True when JSON `text` holds a NUL character, which PostgreSQL cannot store in jsonb."""
    return _NUL_ESCAPE.search(text) is not None


def check_payload_storable(job: str, encoded: str) -> None:
    """Refuse a payload PostgreSQL cannot store (its encoding was checked already)."""
    if has_nul(encoded):
        raise PayloadError(job, "it contains a NUL character (\\u0000), which cannot be stored")


def _strip_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def encode_error(error: ErrorInfo) -> dict[str, Any]:
    """An error summary as a JSON object (NUL characters, which jsonb refuses, replaced)."""
    return {
        "v": FORMAT_VERSION,
        "type": _strip_nul(error.type),
        "message": _strip_nul(error.message),
        "traceback": _strip_nul(error.traceback),
    }


def _decode_error(data: Mapping[str, Any] | None) -> ErrorInfo | None:
    if not data:
        return None
    return ErrorInfo(data["type"], data["message"], data.get("traceback", ""))


def decode_attempts(run_id: str, entries: list[dict[str, Any]] | None) -> tuple[Attempt, ...]:
    """A run's attempt log from its ``attempts`` column (None: a row read without it)."""
    attempts = []
    for entry in entries or ():
        if entry.get("v") != ATTEMPT_VERSION:
            raise ValueError(f"run {run_id}: unsupported attempt version {entry.get('v')!r}")
        delay = entry.get("d")
        attempts.append(
            Attempt(
                number=int(entry["n"]),
                started_at=datetime.fromisoformat(entry["s"]).astimezone(UTC),
                finished_at=datetime.fromisoformat(entry["f"]).astimezone(UTC),
                worker=entry.get("w"),
                outcome=AttemptOutcome(entry["o"]),
                error=_decode_error(entry.get("e")),
                retry_delay=None if delay is None else timedelta(milliseconds=int(delay)),
            )
        )
    return tuple(attempts)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (anything else as its string), with NUL characters replaced,
    for free-form JSON columns such as the audit trail's before and after."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return json.loads(_NUL_ESCAPE.sub(lambda m: m.group(1) + "\\ufffd", text))


def decode_run(row: Mapping[str, Any]) -> Run:
    """A run from its row (the `RUN_COLUMNS`)."""
    return Run(
        id=row["id"],
        job=row["job"],
        state=RunState(row["state"]),
        enqueued_at=utc(row["enqueued_at"]),
        payload=row["payload"],
        priority=Priority(row["priority"]),
        trigger=RunTrigger(row["triggered_by"]),
        attempt=row["attempt"],
        run_at=_opt_utc(row["run_at"]),
        started_at=_opt_utc(row["started_at"]),
        finished_at=_opt_utc(row["finished_at"]),
        worker=row["worker"],
        error=_decode_error(row["error"]),
        stalls=row["stalls"],
        schedule_id=row["schedule_id"],
        slot=_opt_utc(row["slot"]),
        idempotency_key=row["idempotency_key"],
        origin_run_id=row["origin_run_id"],
        attempts=decode_attempts(row["id"], row.get("attempts")),
        attempts_dropped=row.get("attempts_dropped") or 0,
        cancel_requested_at=_opt_utc(row.get("cancel_requested_at")),
        trace_context=stored_trace_context(row.get("trace_context")),
        first_attempt_trace=stored_trace_context(row.get("first_attempt_trace")),
        workflow_id=row.get("workflow_id"),
        workflow_step=row.get("workflow_step"),
    )


# --- schedule definitions ---------------------------------------------------------------------

#: Definitions are stored as jsonb in the shape every backend shares.
encode_schedule = schedule_to_json
decode_schedule = schedule_from_json
