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
atl  attempt log, JSON (below)     atd  attempts dropped from the log
cxl  cancel asked (if active), ms
tc   trace context: its traceparent, or JSON {traceparent, tracestate} (traced enqueues)
tca  the first attempt's trace context, as tc (once it failed and was retried, traced)
wf   workflow id (a workflow's step) wfs the step's name in it
==== ============================  ==== =====================================

The attempt log is a JSON array, oldest first, of at most `MAX_ATTEMPTS_KEPT` entries, each
versioned on its own: ``{"v": 1, "n": attempt number, "s": started ms, "f": finished ms,
"w": worker, "o": AttemptOutcome value, "e": {type, message, traceback}, "d": retry delay
ms}`` (``w``, ``e`` and ``d`` only when known). Runs stored before the log existed have no
``atl`` field and read as runs without attempts: the log is an addition to format 1, which
readers that predate it ignore. A run that succeeded at its only attempt has no log either:
its attempt is read off ``att``, ``sta``, ``fin`` and ``wrk`` (most runs are that, and the log
would add ~90 bytes to the ~100 of its archived record).
``tc`` and ``tca`` are additions of the same kind: a run without them (or with one that does
not parse) reads as untraced.

Archived runs
-------------
A run lives in a hash of its own (`Keys.run`) until it ends. Then lua/common.lua's ``end_run``
moves its record into an archive: field ``<run id>`` of one of 256 hashes (`Keys.archive`,
picked by the id's last two characters), as a JSON array followed by the payload's JSON::

    [ARCHIVE_VERSION, <payload bytes>, <the fields of ARCHIVED_FIELDS in order>,
     name, value, name, value, ...]{"tenant":"acme"}

A field of `ARCHIVED_FIELDS` is ``false`` when absent, a number when its text is a whole
number (`ARCHIVE_RELATIVE` ones less ``enq``: a few digits instead of 13) or, for the fields
of `ARCHIVE_CODES`, one of its values (the value's place in the list), else a string; the
run's other fields (``err``, ``atl``, ``sch`` ...) follow as name, value pairs of strings. The
payload (``pl``) comes last as it is, its length in bytes second: inside the array it would
be a string, a backslash before each of its quotes. ``v`` is not stored: an archived record is
format 1. A finished run costs ~180 bytes of Redis there, against ~300 in a hash of its own (a
key's own overhead, and field names in every record). Only Lua reads the archive
(``archived_flat``): every reader gets a run's fields as its hash would hold them, so
`decode_run` reads both. Runs that ended before the archive existed stay in their hashes and
read as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

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

try:  # the speed extra: about 3x faster on the records a worker decodes for every claim
    import orjson
except ImportError:  # pragma: no cover - CI tests with the extra; the stdlib reads the same
    orjson = None  # type: ignore[assignment]


def _stdlib_loads(text: str | bytes) -> Any:
    return json.loads(text)


def _orjson_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what orjson refuses but json reads (integers > 64 bits)
        return json.loads(text)


#: `json.loads`, through orjson when it is installed (same values for every stored text).
loads: Callable[[str | bytes], Any] = _stdlib_loads if orjson is None else _orjson_loads

FORMAT_VERSION = "1"
#: The version of an archived record (first element of its array).
ARCHIVE_VERSION = 1
#: The fields an archived record holds by position, in order; other fields follow as pairs.
#: ``enq`` comes first: the ``ARCHIVE_RELATIVE`` ones after it are read relative to it.
ARCHIVED_FIELDS = ("enq", "job", "st", "pri", "att", "tok", "trg", "rdy", "sta", "fin", "wrk")
#: Archived fields stored as milliseconds after ``enq`` (small numbers, fewer bytes).
ARCHIVE_RELATIVE = frozenset({"rdy", "sta", "fin"})
if ARCHIVED_FIELDS[0] != "enq":  # pragma: no cover - a guard for whoever edits the lists
    raise RuntimeError("codec.ARCHIVED_FIELDS must start with 'enq'")
#: Archived fields stored as a number for their most common values: 1 for the first listed,
#: and so on (any other value as a string). Stored data depends on these orders: only append.
ARCHIVE_CODES: Mapping[str, tuple[str, ...]] = {
    "st": ("succeeded", "dead", "cancelled"),
    "trg": ("manual", "schedule", "dead_letter_retry", "workflow"),
}
#: The version of each attempt log entry.
ATTEMPT_VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: Enum members by stored value: a dict lookup is several times cheaper than `Enum(value)`.
_STATES = {state.value: state for state in RunState}
_PRIORITIES = {str(priority.value): priority for priority in Priority}
_TRIGGERS = {trigger.value: trigger for trigger in RunTrigger}


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


def encode_trace_context(context: Mapping[str, str] | None) -> str:
    """A run's trace context as field ``tc`` stores it ('' for none): the bare traceparent
    when that is all (55 characters: the hash stays within Redis's 64-byte listpack values),
    else a JSON object."""
    if not context:
        return ""
    if context.keys() == {"traceparent"}:
        return context["traceparent"]
    return json.dumps(dict(context), separators=(",", ":"))


def decode_trace_context(text: str | None) -> dict[str, str] | None:
    """Field ``tc`` (or ``tca``) read back: None when absent or unreadable (the run stays
    readable)."""
    if not text:
        return None
    if not text.startswith("{"):
        return stored_trace_context({"traceparent": text})
    try:
        return stored_trace_context(loads(text))
    except ValueError:
        return None


def _decode_error(text: str | None) -> ErrorInfo | None:
    if not text:
        return None
    return _error(loads(text))


def _error(data: Mapping[str, Any]) -> ErrorInfo:
    return ErrorInfo(data["type"], data["message"], data.get("traceback", ""))


def decode_attempts(run_id: str, text: str | None) -> tuple[Attempt, ...]:
    """The attempt log (field ``atl``); none for a run stored before the log existed."""
    if not text:
        return ()
    entries: list[dict[str, Any]] = loads(text)
    attempts = []
    for entry in entries:
        if entry.get("v") != ATTEMPT_VERSION:
            raise ValueError(f"run {run_id}: unsupported attempt version {entry.get('v')!r}")
        delay = entry.get("d")
        attempts.append(
            Attempt(
                number=int(entry["n"]),
                started_at=from_ms(entry["s"]),
                finished_at=from_ms(entry["f"]),
                worker=entry.get("w"),
                outcome=AttemptOutcome(entry["o"]),
                error=_error(entry["e"]) if entry.get("e") else None,
                retry_delay=None if delay is None else timedelta(milliseconds=int(delay)),
            )
        )
    return tuple(attempts)


def _only_attempt(fields: Mapping[str, str]) -> tuple[Attempt, ...]:
    """The attempt of a run that succeeded at its first try: the store keeps no log for it
    (step.lua), so it is read off the run's own fields."""
    if fields.get("st") != "succeeded" or not fields.get("sta") or not fields.get("fin"):
        return ()
    return (
        Attempt(
            number=int(fields.get("att", "1")),
            started_at=from_ms(fields["sta"]),
            finished_at=from_ms(fields["fin"]),
            worker=fields.get("wrk") or None,
            outcome=AttemptOutcome.SUCCEEDED,
        ),
    )


def _opt_ms(fields: Mapping[str, str], name: str) -> datetime | None:
    value = fields.get(name)
    return from_ms(value) if value else None


def decode_run(run_id: str, fields: Mapping[str, str]) -> tuple[Run, int]:
    """A run and its fencing token from its stored fields."""
    version = fields.get("v")
    if version != FORMAT_VERSION:
        raise ValueError(f"run {run_id}: unsupported stored format version {version!r}")
    state, priority = fields["st"], fields["pri"]
    trigger = fields.get("trg", RunTrigger.MANUAL.value)
    run = Run(
        id=run_id,
        job=fields["job"],
        state=_STATES.get(state) or RunState(state),
        enqueued_at=from_ms(fields["enq"]),
        payload=loads(fields.get("pl", "{}")),
        priority=_PRIORITIES.get(priority) or Priority(int(priority)),
        trigger=_TRIGGERS.get(trigger) or RunTrigger(trigger),
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
        attempts=decode_attempts(run_id, fields.get("atl")) or _only_attempt(fields),
        attempts_dropped=int(fields.get("atd", "0")),
        cancel_requested_at=_opt_ms(fields, "cxl"),
        trace_context=decode_trace_context(fields.get("tc")),
        workflow_id=fields.get("wf") or None,
        workflow_step=fields.get("wfs") or None,
        first_attempt_trace=decode_trace_context(fields.get("tca")),
    )
    return run, int(fields.get("tok", "0"))
