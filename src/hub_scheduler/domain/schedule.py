"""Schedules: when a job runs by itself, computed as UTC instants, correct across DST.

Three triggers say when: `Cron` (an expression in a time zone), `Every` (a fixed interval)
and `Once` (one instant). A `Schedule` adds a window (start, end), a run limit, a payload and
a `MisfirePolicy` for slots that passed while no scheduler was running.

Cron semantics match Debian (Vixie) cron's DST rules, which is what people expect of cron,
for a shift of any size (an hour, Lord Howe's 30 minutes, Troll's 2 hours, a skipped day):
- a *fixed-hour* job (its hour field names hours: ``30 2 * * *``, ``*/15 1 * * *``) whose
  local time falls in a skipped interval (clocks go forward) runs once, right after the jump
  (at the first instant of the new offset); several of its slots in one gap make one run;
- a fixed-hour job in a repeated interval (clocks go back) runs once, in the first copy;
- a *wildcard-hour* job (its hour field starts with ``*``: ``0 */2 * * *``, ``*/20 * * * *``)
  runs at every wall time that really passes: in both copies of a repeated interval, and not
  at all for wall times that were skipped.
cronsim matches the expression on wall times; the DST rules are applied here, not by cronsim,
whose own DST handling keys on the minute field too and misses or repeats fires for shifts
that are not a whole hour. Every instant this module hands out is UTC.
"""

from __future__ import annotations

import difflib
import enum
import functools
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from typing import Any

import attrs
from cronsim import CronSim, CronSimError

from hub_scheduler.domain.errors import (
    InvalidCronError,
    InvalidScheduleError,
    UnknownTimezoneError,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
#: Cron fires are computed up to the end of the year before this (datetime ends in 9999).
LAST_YEAR = 9998

#: The nicknames cron understands, as five-field expressions.
ALIASES: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_RANGES = {
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT",
}
_CRONSIM_FIELD = {
    "Bad minute": "minute",
    "Bad hour": "hour",
    "Bad day-of-month": "day-of-month",
    "Bad month": "month",
    "Bad day-of-week": "day-of-week",
}


@cache
def load_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The `ZoneInfo` for an IANA name, or `UnknownTimezoneError` with close suggestions."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        suggestions = difflib.get_close_matches(
            name, sorted(zoneinfo.available_timezones()), n=2, cutoff=0.6
        )
        raise UnknownTimezoneError(name, suggestions) from None


def _require_aware(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return _utc(value, name)


def _aware_anchor(value: datetime | None) -> datetime | None:
    return _require_aware("anchor", value)


def _aware_start(value: datetime | None) -> datetime | None:
    return _require_aware("start", value)


def _aware_end(value: datetime | None) -> datetime | None:
    return _require_aware("end", value)


def _aware_at(value: datetime) -> datetime:
    return _utc(value, "at")


def _utc(value: datetime, name: str = "instant") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidScheduleError(
            name, f"{value.isoformat()} has no time zone; pass an aware datetime (e.g. UTC)"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 at a positive offset
        raise InvalidScheduleError(name, f"{value.isoformat()} is out of range") from None


def normalize_cron(expression: str) -> str:
    """The five-field form of `expression`, or `InvalidCronError` saying what to fix."""
    text = " ".join(expression.split())
    if not text:
        raise InvalidCronError(expression, "it is empty; write five fields like '0 8 * * *'")
    if text.startswith("@"):
        alias = ALIASES.get(text.lower())
        if alias is None:
            known = ", ".join(sorted(ALIASES))
            raise InvalidCronError(expression, f"unknown nickname {text!r}; use one of {known}")
        return alias
    fields = text.split(" ")
    if len(fields) != len(_FIELDS):
        raise InvalidCronError(
            expression,
            f"it has {len(fields)} fields but cron needs 5 "
            "(minute hour day-of-month month day-of-week), e.g. '30 2 * * *'",
        )
    try:
        CronSim(text, datetime(2000, 1, 1))  # noqa: DTZ001 - parsing only, no instant involved
    except CronSimError as exc:
        field = _CRONSIM_FIELD.get(str(exc))
        if field is None:
            raise InvalidCronError(expression, str(exc)) from None
        value = fields[_FIELDS.index(field)]
        step = value.partition("/")[2]
        if "/" in value and (not step.isdigit() or int(step) == 0):
            why = f"step {step!r} must be a whole number of at least 1"
        elif field == "day-of-month" and value.isdigit() and 1 <= int(value) <= 31:
            why = f"day {value} never occurs in month(s) {fields[3]!r}, so it would never run"
        else:
            why = f"allowed values are {_FIELD_RANGES[field]}"
        raise InvalidCronError(expression, f"bad {field} field {value!r}: {why}") from None
    return text


def _jump(zone: tzinfo, wall: datetime) -> datetime:
    """The instant clocks jumped over the skipped wall time `wall` (naive): the first
    instant of the new offset, to the second."""
    early = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # read with the new offset
    late = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # read with the old offset
    new_offset = late.astimezone(zone).utcoffset()
    while late - early > timedelta(seconds=1):
        middle = early + timedelta(seconds=(late - early) // timedelta(seconds=2))
        if middle.astimezone(zone).utcoffset() == new_offset:
            late = middle
        else:
            early = middle
    return late


def _span(shift: timedelta) -> str:
    """A clock shift in words: "30 minutes", "2 hours", "1 day"."""
    minutes = int(shift.total_seconds() // 60)
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{minutes} minutes"


@attrs.frozen
class Cron:
    """Fire whenever a cron expression matches the local time of `timezone`.

    Attributes:
        expression: five fields (minute hour day-of-month month day-of-week) or a
            nickname such as ``@daily``; stored normalised.
        timezone: IANA name the expression is read in.
    """

    expression: str = attrs.field(converter=normalize_cron)
    timezone: str = attrs.field(default="UTC")

    @timezone.validator
    def _check_timezone(self, _: attrs.Attribute[str], value: str) -> None:
        load_timezone(value)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The time zone the expression is evaluated in."""
        return load_timezone(self.timezone)

    @property
    def fixed_hour(self) -> bool:
        """True when the hour field names hours (Debian cron's "fixed-time" jobs)."""
        return not self.expression.split(" ")[1].startswith("*")

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:  # noqa: ARG002
        """The first fire instant strictly after `after`, in UTC; None when there is none a
        datetime can hold (after the year 9998)."""
        after = _utc(after)
        if after.year >= LAST_YEAR:
            return None
        zone = self.tz
        # Walk wall times from early enough that a repeated interval's second copy, whose
        # wall time is before `after`'s, is not passed over.
        lowest = min(
            (after + timedelta(days=d)).astimezone(zone).utcoffset() or timedelta()
            for d in (0, 1, 2)
        )
        start = (after + lowest).replace(tzinfo=None)
        best: datetime | None = None
        for wall in CronSim(self.expression, start):
            fires = self._instants(wall)
            # Fires of later wall times are never earlier than this wall's first one.
            if best is not None and fires and fires[0] >= best:
                return best
            for fire in fires:
                if fire > after and (best is None or fire < best):
                    best = fire
        raise AssertionError("unreachable: CronSim iterates forever")  # pragma: no cover

    def _instants(self, wall: datetime) -> list[datetime]:
        """The UTC instants a matching wall time fires at (Debian cron's rules), in order."""
        zone = self.tz
        first = wall.replace(tzinfo=zone, fold=0)
        second = wall.replace(tzinfo=zone, fold=1)
        before, after = first.utcoffset(), second.utcoffset()
        if before == after:
            return [first.astimezone(UTC)]
        if before is not None and after is not None and before > after:  # repeated
            copies = [first.astimezone(UTC), second.astimezone(UTC)]
            return copies[:1] if self.fixed_hour else copies
        return [_jump(zone, wall)] if self.fixed_hour else []  # skipped

    def matches_wall_time(self, local: datetime) -> bool:
        """True when the local wall time (ignoring DST) satisfies every field."""
        wall = local.replace(tzinfo=None, second=0, microsecond=0)
        return next(CronSim(self.expression, wall - timedelta(minutes=1))) == wall

    def dst_note(self, fire: datetime) -> str | None:
        """Why DST shaped this fire instant, or None when it did not."""
        local = fire.astimezone(self.tz)
        if not self.matches_wall_time(local):
            offset_before = (fire - timedelta(seconds=1)).astimezone(self.tz).utcoffset()
            if offset_before is not None and offset_before != local.utcoffset():
                jumped_from = (fire + offset_before).replace(tzinfo=None)
                shift = (local.utcoffset() or offset_before) - offset_before
                span = {timedelta(hours=1): "hour", timedelta(minutes=30): "half hour"}.get(
                    shift, f"interval ({_span(shift)})"
                )
                return (
                    f"moved out of a skipped {span}: clocks went forward from "
                    f"{jumped_from:%H:%M} to {local:%H:%M}, so the slot runs at {local:%H:%M}"
                )
            return None  # pragma: no cover - cronsim only shifts slots at a transition
        other = local.replace(fold=1 - local.fold)
        if other.utcoffset() == local.utcoffset():
            return None
        if local.fold == 0:
            return (
                "first of a repeated hour (clocks go back); runs once"
                if self.fixed_hour
                else "first of a repeated hour (clocks go back)"
            )
        return "second of a repeated hour (clocks went back)"

    def describe(self) -> str:
        """The expression in words, e.g. "At 02:30 (Australia/Sydney)"."""
        return f"{_explain(self.expression)} ({self.timezone})"


@functools.lru_cache(maxsize=4096)
def _explain(expression: str) -> str:
    """A cron expression in words (cronsim's), worked out once per expression: a listing
    of many schedules shares few expressions, and explaining one costs ~0.2 ms."""
    return CronSim(expression, datetime(2000, 1, 1)).explain()  # noqa: DTZ001


@attrs.frozen
class Every:
    """Fire at a fixed interval, on slots ``anchor + k * interval``.

    Without an anchor, slots are aligned to the schedule's start, or to the Unix epoch
    when it has none, so every replica computes the same slots.

    Attributes:
        interval: at least one second.
        anchor: an aware instant slots are counted from.
    """

    interval: timedelta
    anchor: datetime | None = attrs.field(default=None, converter=_aware_anchor)

    def __attrs_post_init__(self) -> None:
        if self.interval < timedelta(seconds=1):
            raise InvalidScheduleError(
                "interval", f"must be at least 1 second, got {self.interval}"
            )
        if self.interval > timedelta(days=3650):
            raise InvalidScheduleError("interval", "must be at most 10 years")

    @property
    def timezone(self) -> str:
        """Intervals are counted in real time; they are shown in UTC."""
        return "UTC"

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        """The first slot strictly after `after`, in UTC (None past year 9999)."""
        after = _utc(after)
        origin = self.anchor or anchor or EPOCH
        if after < origin:
            return origin
        steps = (after - origin) // self.interval + 1
        try:
            return origin + steps * self.interval
        except OverflowError:  # past the last instant a datetime holds
            return None

    def dst_note(self, fire: datetime) -> str | None:  # noqa: ARG002
        """Intervals are real elapsed time; DST never shapes them."""
        return None

    def describe(self) -> str:
        """The interval in words, e.g. "Every 5 minutes"."""
        seconds = int(self.interval.total_seconds())
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds % size == 0:
                count = seconds // size
                return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
        return (
            "Every second" if seconds == 1 else f"Every {self.interval.total_seconds():g} seconds"
        )


@attrs.frozen
class Once:
    """Fire a single time, at `at`."""

    at: datetime = attrs.field(converter=_aware_at)

    @property
    def timezone(self) -> str:
        """A single instant is shown in UTC."""
        return "UTC"

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:  # noqa: ARG002
        """`at` if it is strictly after `after`, else None."""
        return self.at if self.at > _utc(after) else None

    def dst_note(self, fire: datetime) -> str | None:  # noqa: ARG002
        """A fixed instant is not shaped by DST."""
        return None

    def describe(self) -> str:
        """The instant in words."""
        return f"Once at {self.at:%Y-%m-%d %H:%M:%S} UTC"


ScheduleTrigger = Cron | Every | Once


class MisfireKind(enum.StrEnum):
    """What to do with slots that passed while no scheduler could fire them."""

    SKIP = "skip"
    RUN_ONCE = "run_once"
    CATCH_UP = "catch_up"


class SlotOutcome(enum.StrEnum):
    """What became of one expected slot of a schedule (the slot ledger's vocabulary)."""

    ENQUEUED = "enqueued"
    """Fired on time (within the grace window)."""
    LATE = "late"
    """Fired after the grace window, by a `run_once` or `catch_up` policy."""
    MISSED = "missed"
    """Passed unfired and dropped by the misfire policy."""
    COALESCED = "coalesced"
    """Passed unfired and merged into one late run."""
    PAUSED = "paused"
    """Not fired because the job, its schedule or the queue was paused."""


@attrs.frozen
class SlotDecision:
    """The outcome the misfire policy gives one due slot."""

    slot: datetime
    outcome: SlotOutcome

    @property
    def fires(self) -> bool:
        """True when the slot is to be enqueued."""
        return self.outcome in (SlotOutcome.ENQUEUED, SlotOutcome.LATE)


@attrs.frozen
class MisfirePolicy:
    """How a schedule treats slots found overdue by more than `grace`.

    A slot fired within `grace` of its instant is on time, whatever the policy. Older slots
    are misfires: `skip` drops them all; `run_once` fires the newest one late and coalesces
    the rest; `catch_up` fires the newest `max_runs` of them late, oldest first, and drops
    the rest.
    """

    kind: MisfireKind = MisfireKind.SKIP
    grace: timedelta = timedelta(seconds=60)
    max_runs: int = 1

    def __attrs_post_init__(self) -> None:
        if self.grace < timedelta(0):
            raise InvalidScheduleError("misfire grace", f"must not be negative, got {self.grace}")
        if not 1 <= self.max_runs <= 1000:
            raise InvalidScheduleError(
                "misfire max_runs", f"must be between 1 and 1000, got {self.max_runs}"
            )
        if self.kind is not MisfireKind.CATCH_UP and self.max_runs != 1:
            raise InvalidScheduleError("misfire max_runs", "only applies to catch_up")

    @classmethod
    def skip(cls, grace: timedelta = timedelta(seconds=60)) -> MisfirePolicy:
        """Drop every slot that is overdue by more than `grace` (the default policy)."""
        return cls(MisfireKind.SKIP, grace)

    @classmethod
    def run_once(cls, grace: timedelta = timedelta(seconds=60)) -> MisfirePolicy:
        """Run once, late, for any number of overdue slots."""
        return cls(MisfireKind.RUN_ONCE, grace)

    @classmethod
    def catch_up(cls, max_runs: int, grace: timedelta = timedelta(seconds=60)) -> MisfirePolicy:
        """Run up to `max_runs` of the overdue slots, the newest ones."""
        return cls(MisfireKind.CATCH_UP, grace, max_runs)

    def describe(self) -> str:
        """The policy in words."""
        if self.kind is MisfireKind.CATCH_UP:
            return f"catch up at most {self.max_runs} missed runs"
        return {"skip": "skip missed runs", "run_once": "run once after missed runs"}[self.kind]

    def plan(self, due: Sequence[datetime], now: datetime) -> list[SlotDecision]:
        """Decide the outcome of each due slot (all at or before `now`), in slot order."""
        on_time = [s for s in due if now - s <= self.grace]
        late = [s for s in due if now - s > self.grace]
        decisions: dict[datetime, SlotOutcome] = dict.fromkeys(on_time, SlotOutcome.ENQUEUED)
        if self.kind is MisfireKind.SKIP:
            decisions |= dict.fromkeys(late, SlotOutcome.MISSED)
        elif self.kind is MisfireKind.RUN_ONCE:
            decisions |= dict.fromkeys(late[:-1], SlotOutcome.COALESCED)
            decisions |= dict.fromkeys(late[-1:], SlotOutcome.LATE)
        else:
            keep = len(late) - self.max_runs
            decisions |= dict.fromkeys(late[: max(keep, 0)], SlotOutcome.MISSED)
            decisions |= dict.fromkeys(late[max(keep, 0) :], SlotOutcome.LATE)
        return [SlotDecision(s, decisions[s]) for s in sorted(decisions)]


@attrs.frozen
class FirePreview:
    """One upcoming fire: the UTC instant, the local wall time and a DST note if any."""

    utc: datetime
    local: datetime
    note: str | None = None


def _positive_max_runs(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        raise InvalidScheduleError("max_runs", f"must be at least 1, got {value}")


@attrs.frozen
class Schedule:
    """A trigger for one job, with a window, a run limit, a payload and a misfire policy.

    Attributes:
        trigger: `Cron`, `Every` or `Once`.
        job: the job it runs ("" until bound by a `JobDefinition`).
        id: stable identifier ("" until bound).
        start: no fire before this instant (aware).
        end: no fire after this instant (aware).
        max_runs: stop after this many fires.
        misfire: what to do with overdue slots.
        payload: the payload every fired run gets.
    """

    trigger: ScheduleTrigger
    job: str = ""
    id: str = ""
    start: datetime | None = attrs.field(default=None, converter=_aware_start)
    end: datetime | None = attrs.field(default=None, converter=_aware_end)
    max_runs: int | None = attrs.field(default=None, validator=_positive_max_runs)
    misfire: MisfirePolicy = attrs.field(factory=MisfirePolicy)
    payload: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise InvalidScheduleError(
                "end", f"{self.end.isoformat()} is before the start {self.start.isoformat()}"
            )

    def bind(self, job: str, default_id: str) -> Schedule:
        """This schedule attached to `job`, keeping an explicit id."""
        return attrs.evolve(self, job=job, id=self.id or default_id)

    @property
    def timezone(self) -> str:
        """The zone its times are shown in (the cron zone, else UTC)."""
        return self.trigger.timezone

    def next_fire(self, after: datetime, runs_so_far: int = 0) -> datetime | None:
        """The first fire instant strictly after `after` (UTC), or None once it is over.

        It is over after `end`, after `max_runs` fires, after a `Once` has passed, and when
        the next fire would fall after the year 9999 (the end of `datetime`).
        """
        if self.max_runs is not None and runs_so_far >= self.max_runs:
            return None
        after = _utc(after)
        if self.start is not None and after < self.start:
            after = max(self.start, datetime.min.replace(tzinfo=UTC) + _TICK) - _TICK
        try:
            fire = self.trigger.next_after(after, self.start)
        except OverflowError:
            return None  # past year 9999: the schedule is over
        if fire is None or (self.end is not None and fire > self.end):
            return None
        return fire

    def fires(self, after: datetime, runs_so_far: int = 0) -> Iterator[datetime]:
        """Every fire instant strictly after `after`, in order, while the schedule lasts."""
        fire = self.next_fire(after, runs_so_far)
        while fire is not None:
            yield fire
            runs_so_far += 1
            fire = self.next_fire(fire, runs_so_far)

    def due(
        self, after: datetime, now: datetime, runs_so_far: int = 0, limit: int | None = None
    ) -> list[datetime]:
        """The slots strictly after `after` and at or before `now`, the first `limit` of them.

        Stops computing at `limit`, so a year-long outage of a one-second schedule costs
        `limit` slots, not 31 million.
        """
        slots: list[datetime] = []
        for fire in self.fires(after, runs_so_far):
            if fire > now or (limit is not None and len(slots) >= limit):
                break
            slots.append(fire)
        return slots

    def preview(self, after: datetime, n: int, runs_so_far: int = 0) -> list[FirePreview]:
        """The next `n` fires with their local time and any DST note."""
        if not 1 <= n <= 1000:
            raise InvalidScheduleError("preview count", f"must be between 1 and 1000, got {n}")
        zone: tzinfo = load_timezone(self.timezone)
        out: list[FirePreview] = []
        for fire in self.fires(after, runs_so_far):
            out.append(FirePreview(fire, fire.astimezone(zone), self.trigger.dst_note(fire)))
            if len(out) == n:
                break
        return out

    def describe(self) -> str:
        """The schedule in words, with its window and limit."""
        parts = [self.trigger.describe()]
        if self.start is not None:
            parts.append(f"from {self.start:%Y-%m-%d %H:%M} UTC")
        if self.end is not None:
            parts.append(f"until {self.end:%Y-%m-%d %H:%M} UTC")
        if self.max_runs is not None:
            parts.append(f"at most {self.max_runs} runs")
        return ", ".join(parts)
