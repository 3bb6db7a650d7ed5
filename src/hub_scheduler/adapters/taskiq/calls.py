"""taskiq tasks as hub jobs: their labels as job settings, their calls as run payloads.

A ``.kiq(*args, **kwargs)`` becomes one run whose payload is the versioned JSON object
``{"v": 1, "args": [...], "kwargs": {...}, "labels": {...}, "labels_types": {...}}``;
the worker turns it back into the taskiq message the task would have received.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from taskiq.message import TaskiqMessage

from hub_scheduler.domain.errors import InvalidJobError, InvalidScheduleError
from hub_scheduler.domain.model import Payload, Priority
from hub_scheduler.domain.retry import RetryPolicy
from hub_scheduler.domain.schedule import Cron, Every, Once, Schedule, ScheduleTrigger

#: The version of the payload layout of a taskiq call.
CALL_VERSION = 1

#: Labels that configure the hub (read when the task is registered or kiq'ed) and are not
#: passed on with the message. ``schedule`` is the task's own list (imported as schedules).
HUB_LABELS = frozenset({"priority", "delay", "idempotency_key", "schedule"})

#: The longest a taskiq task without a ``timeout`` label may run (the hub's upper bound).
NO_TIMEOUT = timedelta(days=1)


@attrs.frozen
class KiqOptions:
    """How one ``.kiq()`` is enqueued, read from its labels."""

    priority: Priority | None = None
    delay: timedelta | None = None
    idempotency_key: str | None = None


def _seconds(name: str, value: Any) -> timedelta:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidJobError(name, f"must be a number of seconds, got {value!r}") from None
    if not seconds >= 0:  # also refuses NaN
        raise InvalidJobError(name, f"must not be negative, got {value!r}")
    return timedelta(seconds=seconds)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def kiq_options(labels: Mapping[str, Any]) -> KiqOptions:
    """The enqueue options in a message's labels: ``priority`` (a name such as ``"high"``
    or a number), ``delay`` (seconds), ``idempotency_key``. Raises `InvalidJobError`."""
    priority = labels.get("priority")
    delay = labels.get("delay")
    key = labels.get("idempotency_key")
    return KiqOptions(
        priority=None if priority is None else Priority.parse(priority),
        delay=None if delay is None else _seconds("delay", delay),
        idempotency_key=None if key is None else str(key),
    )


def retry_policy(labels: Mapping[str, Any], default: RetryPolicy) -> RetryPolicy:
    """The retry policy a task's labels ask for.

    ``retry_on_error=False`` disables retries; ``max_retries`` is the number of retries
    after the first attempt; ``retry_delay`` the first backoff (seconds, doubling after);
    anything not given comes from `default`.
    """
    if "retry_on_error" in labels and not _flag(labels["retry_on_error"]):
        return RetryPolicy.none()
    changes: dict[str, Any] = {}
    if "max_retries" in labels:
        try:
            changes["max_retries"] = int(labels["max_retries"])
        except (TypeError, ValueError):
            raise InvalidJobError(
                "max_retries", f"must be a whole number, got {labels['max_retries']!r}"
            ) from None
    if "retry_delay" in labels:
        delay = _seconds("retry_delay", labels["retry_delay"])
        changes["base_delay"] = delay
        changes["max_delay"] = max(default.max_delay, delay)
    return attrs.evolve(default, **changes)


def timeout(labels: Mapping[str, Any]) -> timedelta:
    """A task's ``timeout`` label (seconds), or `NO_TIMEOUT` without one."""
    if labels.get("timeout") is None:
        return NO_TIMEOUT
    return _seconds("timeout", labels["timeout"])


def _timezone(offset: Any) -> str:
    """An IANA zone name for a taskiq ``cron_offset``: a zone name, or a whole-hour
    `timedelta` (a fixed offset from UTC, as taskiq reads it)."""
    if offset is None:
        return "UTC"
    if isinstance(offset, timedelta):
        hours, rest = divmod(offset, timedelta(hours=1))
        if rest or not -14 <= hours <= 12:
            raise InvalidScheduleError(
                "cron_offset", f"a fixed offset must be whole hours, got {offset}"
            )
        # POSIX zone names count the other way round: Etc/GMT-2 is UTC+2.
        return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    return str(offset)


def _aware(value: Any) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # taskiq reads naive as UTC


def _trigger(entry: Mapping[str, Any]) -> ScheduleTrigger:
    if entry.get("cron") is not None:
        return Cron(str(entry["cron"]), _timezone(entry.get("cron_offset")))
    if entry.get("time") is not None:
        return Once(_aware(entry["time"]))
    interval = entry["interval"]
    seconds = interval if isinstance(interval, timedelta) else timedelta(seconds=int(interval))
    return Every(seconds)


def schedules(labels: Mapping[str, Any]) -> tuple[Schedule, ...]:
    """The schedules in a task's ``schedule`` label (taskiq's `LabelScheduleSource` format:
    ``cron`` with an optional ``cron_offset``, ``time`` or ``interval``, and ``args``,
    ``kwargs``, ``labels``, ``schedule_id``). Raises `InvalidScheduleError`."""
    found = []
    for index, entry in enumerate(labels.get("schedule") or ()):
        if not isinstance(entry, Mapping) or not {"cron", "time", "interval"} & entry.keys():
            raise InvalidScheduleError(
                "schedule", f"entry {index} needs a 'cron', 'time' or 'interval': {entry!r}"
            )
        try:
            trigger = _trigger(entry)
        except (ValueError, TypeError, zoneinfo.ZoneInfoNotFoundError) as exc:
            if isinstance(exc, InvalidScheduleError):
                raise
            raise InvalidScheduleError("schedule", f"entry {index}: {exc}") from None
        payload = call_payload(
            list(entry.get("args") or []), dict(entry.get("kwargs") or {}), {}, {}
        )
        extra = dict(entry.get("labels") or {})
        if extra:
            payload = {**payload, "labels": {k: str(v) for k, v in extra.items()}}
        found.append(Schedule(trigger, id=str(entry.get("schedule_id") or ""), payload=payload))
    return tuple(found)


def call_payload(
    args: list[Any],
    kwargs: dict[str, Any],
    labels: Mapping[str, Any],
    labels_types: Mapping[str, int] | None,
) -> dict[str, Any]:
    """The run payload of one call (the hub's own labels left out)."""
    kept = {k: v for k, v in labels.items() if k not in HUB_LABELS}
    types = {k: v for k, v in (labels_types or {}).items() if k in kept}
    return {
        "v": CALL_VERSION,
        "args": args,
        "kwargs": kwargs,
        "labels": kept,
        "labels_types": types,
    }


def message_payload(message: TaskiqMessage) -> dict[str, Any]:
    """The run payload of a kiq'ed message (its labels still in their wire form)."""
    return call_payload(
        list(message.args), dict(message.kwargs), message.labels, message.labels_types
    )


def is_call(payload: Payload) -> bool:
    """Whether a run payload is a taskiq call (else it is a plain hub job's payload)."""
    return payload.get("v") == CALL_VERSION and isinstance(payload.get("args"), list)


def message_for(
    run_id: str, job: str, payload: Payload, extra_labels: Mapping[str, Any]
) -> TaskiqMessage:
    """The taskiq message a run of a taskiq call stands for; `extra_labels` are added to
    its labels where it has none of that name. Raises `ValueError` for another payload."""
    if not is_call(payload):
        raise ValueError(f"run {run_id} of {job!r} is not a taskiq call")
    labels = dict(payload.get("labels") or {})
    for key, value in extra_labels.items():
        labels.setdefault(key, value)
    return TaskiqMessage(
        task_id=run_id,
        task_name=job,
        labels=labels,
        labels_types=dict(payload.get("labels_types") or {}) or None,
        args=list(payload["args"]),
        kwargs=dict(payload.get("kwargs") or {}),
    )
