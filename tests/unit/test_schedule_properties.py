"""Properties of next_fire over generated cron expressions, zones and instants."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub_scheduler import Cron, Every, Schedule

ZONES = [
    "UTC",
    "Australia/Sydney",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # DST moves clocks by 30 minutes
    "Asia/Kolkata",
    "Pacific/Chatham",
]


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        number.map(str),
        st.integers(1, high - low + 1).map(lambda n: f"*/{n}"),
        st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.lists(number, min_size=1, max_size=3, unique=True).map(
            lambda xs: ",".join(map(str, sorted(xs)))
        ),
    )


expressions = st.tuples(
    _field(0, 59), _field(0, 23), st.just("*"), _field(1, 12), _field(0, 6)
).map(" ".join)
instants = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=300, deadline=None)
@given(expressions, st.sampled_from(ZONES), instants)
def test_cron_fires_strictly_increase(expression: str, zone: str, after: datetime) -> None:
    """Each fire is strictly after the instant asked about, and after the previous fire."""
    schedule = Schedule(Cron(expression, zone))
    previous = after
    for fire in list(_take(schedule, after, 5)):
        assert fire > previous
        assert fire.tzinfo is UTC
        previous = fire


@settings(max_examples=300, deadline=None)
@given(expressions, st.sampled_from(ZONES), instants)
def test_cron_fires_match_fields_in_local_time(expression: str, zone: str, after: datetime) -> None:
    """A fire's local wall time matches every field, unless DST moved it out of a gap."""
    cron = Cron(expression, zone)
    for fire in _take(Schedule(cron), after, 5):
        local = fire.astimezone(cron.tz)
        note = cron.dst_note(fire)
        assert cron.matches_wall_time(local) or (
            note is not None and "moved out of a skipped" in note
        )


@settings(max_examples=200, deadline=None)
@given(
    expressions,
    st.sampled_from(ZONES),
    instants,
    st.timedeltas(timedelta(0), timedelta(days=30)),
    st.timedeltas(timedelta(0), timedelta(days=30)),
)
def test_fires_stay_inside_start_and_end(
    expression: str, zone: str, after: datetime, start_in: timedelta, length: timedelta
) -> None:
    """No fire falls before the start or after the end."""
    start = after + start_in
    end = start + length
    schedule = Schedule(Cron(expression, zone), start=start, end=end)
    for fire in _take(schedule, after, 10):
        assert start <= fire <= end


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**6), instants, st.integers(0, 10**5))
def test_every_slots_are_whole_intervals_from_the_anchor(
    seconds: int, after: datetime, offset: int
) -> None:
    """Interval fires are exactly one interval apart and aligned to the anchor."""
    anchor = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    trigger = Every(timedelta(seconds=seconds), anchor=anchor)
    fires = list(_take(Schedule(trigger), after, 3))
    assert fires[0] > after
    assert fires[0] - after <= timedelta(seconds=seconds) or after < anchor
    assert all(b - a == timedelta(seconds=seconds) for a, b in itertools.pairwise(fires))
    assert all((f - anchor) % timedelta(seconds=seconds) == timedelta(0) for f in fires)


def _take(schedule: Schedule, after: datetime, n: int) -> list[datetime]:
    out: list[datetime] = []
    for fire in schedule.fires(after):
        out.append(fire)
        if len(out) == n:
            break
    return out
