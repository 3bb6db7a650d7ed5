"""Flow control a job declares: how many of its runs may be active at once, and how many may
start per period (per job, or per key taken from the payload).

The store enforces both in the step that claims runs, across every worker; these values say
what to enforce. A rate limit is a sliding window over a log of starts: "10/min" lets 10 start
at once, and never more than 10 in any 60 s (what third-party APIs count; a token bucket such
as GCRA would let a second burst follow at its refill pace, up to twice the count in one
window). A run over the limit is not failed and not retried: it is delayed to the earliest
moment the window has room, and checks again then. Nothing is promised ahead, so starts are
counted when they happen, however late a busy worker claims a run; the price is that runs of
a backlog wake together and all but the room go back to waiting.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from hub_scheduler.domain.errors import InvalidJobError

#: The highest `max_running` accepted.
MAX_RUNNING_LIMIT = 10_000
#: The longest name of a payload field a rate limit may be keyed by.
RATE_KEY_MAX = 100
#: The highest count of a rate limit: the store keeps that many starts per key.
RATE_COUNT_MAX = 10_000

_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_RATE = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{0,6})\s*([a-z]+)\s*")


@attrs.frozen
class RateLimit:
    """At most `count` starts in any window of `per`, per job or, with `key`, per value of that
    payload field (one limit per tenant, per API account...; a string, integer or boolean
    value). Runs without the field share one key."""

    count: int
    per: timedelta
    key: str | None = None

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.count <= RATE_COUNT_MAX:
            raise InvalidJobError(
                "rate_limit", f"the count must be 1 to {RATE_COUNT_MAX}, got {self.count}"
            )
        if not timedelta(seconds=1) <= self.per <= timedelta(days=7):
            raise InvalidJobError("rate_limit", f"the period must be 1 s to 7 days, got {self.per}")
        if self.key is not None and not 1 <= len(self.key) <= RATE_KEY_MAX:
            raise InvalidJobError(
                "rate_key", f"must be a payload field name of 1 to {RATE_KEY_MAX} characters"
            )

    @classmethod
    def parse(cls, text: str, key: str | None = None) -> RateLimit:
        """``"10/min"``, ``"100/h"``, ``"5/s"``, ``"1000/day"``, ``"3/10s"``: a count, a slash,
        an optional multiplier and a unit (s, min, h, day). Raises `InvalidJobError`."""
        match = _RATE.fullmatch(text.lower()) if isinstance(text, str) else None
        if match is None or match.group(3) not in _UNITS:
            raise InvalidJobError(
                "rate_limit", f"{text!r} is not a rate such as '10/min', '100/h' or '3/10s'"
            )
        count, times, unit = match.groups()
        seconds = _UNITS[unit] * (int(times) if times else 1)
        return cls(int(count), timedelta(seconds=seconds), key)

    def __str__(self) -> str:
        text = f"{self.count}/{self.per.total_seconds():g}s"
        return text if self.key is None else f"{text} per {self.key}"


def _max_running(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and not (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_RUNNING_LIMIT
    ):
        raise InvalidJobError(
            "max_running", f"must be 1 to {MAX_RUNNING_LIMIT} or None, got {value!r}"
        )


@attrs.frozen
class JobLimits:
    """What a worker declares for one job (`JobQueue.set_limits`); both None: no limit."""

    max_running: int | None = attrs.field(default=None, validator=_max_running)
    rate: RateLimit | None = None

    @property
    def unlimited(self) -> bool:
        """True when neither limit is set."""
        return self.max_running is None and self.rate is None


class OnDuplicate(enum.StrEnum):
    """What enqueueing a unique job does while a run with the same key is unfinished."""

    KEEP = "keep"
    """Keep the existing run: the enqueue answers its id (``created=False``)."""
    REPLACE = "replace"
    """Cancel the existing run if it is still waiting and enqueue the new one; a running
    one is kept (as with `KEEP`), since it cannot be replaced."""


def _fields(value: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Uniqueness:
    """At most one unfinished (waiting or running) run of a job, or of a job per value of
    payload `fields` (one per tenant...). Held from enqueue until the run ends, however it
    ends; an enqueue meanwhile keeps the existing run or replaces it (`OnDuplicate`)."""

    fields: tuple[str, ...] = attrs.field(default=(), converter=_fields)
    on_duplicate: OnDuplicate = attrs.field(default=OnDuplicate.KEEP, converter=OnDuplicate)

    def __attrs_post_init__(self) -> None:
        for field in self.fields:
            if not isinstance(field, str) or not 1 <= len(field) <= RATE_KEY_MAX:
                raise InvalidJobError(
                    "unique", f"fields must be payload field names, got {field!r}"
                )

    def key(self, job: str, payload: Mapping[str, Any]) -> str:
        """The key runs that count as the same share: the job and the fields' values
        (missing ones as null), hashed to a fixed length."""
        values = [payload.get(field) for field in self.fields]
        text = json.dumps([job, values], separators=(",", ":"), sort_keys=True, default=str)
        return "unique:" + hashlib.sha256(text.encode()).hexdigest()[:32]
