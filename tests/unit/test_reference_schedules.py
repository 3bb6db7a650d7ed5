"""The reference deployment's 11 Sydney schedules, checked for a whole year; and every zone
whose clocks move by other than one hour, checked around each of its transitions.

The expected instants come from an independent oracle written here: it walks every local
minute of 2026, keeps those whose wall time matches, and applies Debian cron's DST rules
itself (a fixed-time slot in a skipped hour runs at the transition; in a repeated hour once;
a wildcard-hour slot runs per real hour). It shares no code with the scheduler.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest

from hub_scheduler import Cron, JobDefinition, Schedule

SYDNEY = ZoneInfo("Australia/Sydney")

REFERENCE = {
    "feedbackAIAnalysis": "0 1 * * *",
    "syncXero": "0 2 * * *",
    "syncAccelerate": "0 3 * * *",
    "pdReminders": "0 8 * * *",
    "credentialExpiry": "0 8 * * *",
    "policyReviews": "0 8 * * *",
    "complaintSLA": "0 9 * * *",
    "weeklyDigest": "0 8 * * 1",
    "monthlyComplianceReport": "0 9 1 * *",
    "retryFailedEmails": "0 */2 * * *",
    "checkIncompleteOnboarding": "30 9 * * *",
}


def _field_matches(field: str, value: int) -> bool:
    """The subset of cron syntax the reference set uses: *, */n and single numbers."""
    if field == "*":
        return True
    if field.startswith("*/"):
        return value % int(field[2:]) == 0
    return value == int(field)


def _exists(wall: datetime) -> bool:
    aware = wall.replace(tzinfo=SYDNEY)
    return aware.astimezone(UTC).astimezone(SYDNEY).replace(tzinfo=None) == wall


def _oracle(expression: str, year: int) -> list[datetime]:
    minute, hour, dom, month, dow = expression.split()
    fixed_hour = not hour.startswith("*")
    fires: set[datetime] = set()
    day = date(year, 1, 1)
    while day.year == year:
        if (
            _field_matches(dom, day.day)
            and _field_matches(month, day.month)
            and _field_matches(dow, day.isoweekday() % 7)
        ):
            for h in range(24):
                for m in range(60):
                    if not (_field_matches(hour, h) and _field_matches(minute, m)):
                        continue
                    wall = datetime(day.year, day.month, day.day, h, m)  # noqa: DTZ001
                    if not _exists(wall):
                        if fixed_hour:  # run at the first wall time that exists after it
                            moved = wall
                            while not _exists(moved):
                                moved += timedelta(minutes=1)
                            fires.add(moved.replace(tzinfo=SYDNEY).astimezone(UTC))
                        continue
                    first = wall.replace(tzinfo=SYDNEY, fold=0).astimezone(UTC)
                    second = wall.replace(tzinfo=SYDNEY, fold=1).astimezone(UTC)
                    fires.add(first)
                    if second != first and not fixed_hour:
                        fires.add(second)
        day += timedelta(days=1)
    return sorted(fires)


def _computed(expression: str, year: int) -> list[datetime]:
    schedule = Schedule(Cron(expression, "Australia/Sydney"))
    start = datetime(year, 1, 1, tzinfo=SYDNEY).astimezone(UTC) - timedelta(microseconds=1)
    end = datetime(year + 1, 1, 1, tzinfo=SYDNEY).astimezone(UTC)
    return _until(schedule, start, end)


def _until(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    out = []
    for fire in schedule.fires(start):
        if fire >= end:
            break
        out.append(fire)
    return out


@pytest.mark.parametrize("expression", sorted(set(REFERENCE.values())))
def test_reference_schedule_matches_oracle_for_2026(expression: str) -> None:
    """Every fire instant of 2026 equals the independent oracle's, DST days included."""
    assert _computed(expression, 2026) == _oracle(expression, 2026)


@pytest.mark.parametrize(
    ("job", "count"),
    [
        ("syncXero", 365),  # 02:00 on 2026-10-04 does not exist: runs at 03:00 instead
        ("syncAccelerate", 365),
        ("weeklyDigest", 52),
        ("monthlyComplianceReport", 12),
        # 12 a day; 02:00 happens twice on 2026-04-05 (+1) and not at all on 2026-10-04 (-1)
        ("retryFailedEmails", 12 * 365),
    ],
)
def test_reference_schedule_yearly_counts(job: str, count: int) -> None:
    """Each reference job fires as many times in 2026 as a person would count."""
    assert len(_computed(REFERENCE[job], 2026)) == count


def test_reference_jobs_register_with_sydney_schedules() -> None:
    """All 11 reference jobs register, each with one bound Sydney schedule."""
    jobs = [
        JobDefinition(name, schedules=[Cron(expr, "Australia/Sydney")])
        for name, expr in REFERENCE.items()
    ]
    assert [(j.schedules[0].id, j.schedules[0].job) for j in jobs] == [
        (f"{name}:0", name) for name in REFERENCE
    ]
    assert {j.schedules[0].timezone for j in jobs} == {"Australia/Sydney"}


def test_sync_xero_on_spring_forward_day_runs_at_three() -> None:
    """syncXero (02:00) runs at 03:00 AEDT on 2026-10-04, and at 02:00 AEDT next day."""
    fires = _computed(REFERENCE["syncXero"], 2026)
    around = [
        f.astimezone(SYDNEY)
        for f in fires
        if date(2026, 10, 3) <= f.astimezone(SYDNEY).date() <= date(2026, 10, 5)
    ]
    assert [f.strftime("%m-%d %H:%M %Z") for f in around] == [
        "10-03 02:00 AEST",
        "10-04 03:00 AEDT",
        "10-05 02:00 AEDT",
    ]


# --- every zone whose clocks move by other than one hour ------------------------------------
#
# The same oracle over the days around each transition of zones whose shift is not 60 minutes:
# Lord Howe's 30-minute DST, Troll's 2 hours, and historical 15- and 30-minute and whole-day
# changes. The rules it applies (Debian/Vixie cron, as documented in `hub_scheduler.domain.
# schedule`): a fixed-hour job whose wall time is skipped runs once, right after the jump; a
# wildcard-hour job (hour field starting with ``*``) only runs at wall times that exist; in a
# repeated interval a fixed-hour job runs once (the first copy), a wildcard-hour job in both.

ODD_SHIFTS = [
    ("Australia/Lord_Howe", 2024),  # 30 min: 02:00 -> 01:30 in April, 02:00 -> 02:30 in October
    ("Australia/Lord_Howe", 2025),
    ("Australia/Lord_Howe", 2026),
    ("Australia/Lord_Howe", 2027),
    ("Australia/Lord_Howe", 1990),
    ("Antarctica/Troll", 2026),  # 2 h: +00 <-> +02
    ("America/St_Johns", 1988),  # 2 h "double daylight" at -02:30 / -03:30
    ("Pacific/Rarotonga", 1979),  # 30 min DST at -10:30 / -10:00
    ("Asia/Kathmandu", 1986),  # 15 min forward: +05:30 -> +05:45
    ("America/Caracas", 2007),  # 30 min back: -04:00 -> -04:30
    ("America/Caracas", 2016),  # 30 min forward
    ("Asia/Pyongyang", 2015),  # 30 min back
    ("Asia/Pyongyang", 2018),  # 30 min forward
    ("Asia/Colombo", 1996),  # 30 min back
    ("Pacific/Norfolk", 2015),  # 30 min back
    ("America/Sitka", 1983),  # 2 h back
    ("Pacific/Apia", 2011),  # a whole day skipped (the date line moved)
]

ODD_EXPRESSIONS = [
    "*/15 1 * * *",  # a fixed hour, stepped minutes (the shape of the reported missed fire)
    "*/15 2 * * *",
    "*/10 0-3 * * *",
    "30 2 * * *",
    "45 1 * * *",
    "0,30 1,2 * * *",
    "0 0 * * *",
    "15,45 * * * *",
    "*/20 * * * *",
    "0 */2 * * *",
    "30 */3 * * *",
]


def _matches(field: str, value: int) -> bool:
    """Cron field syntax: lists of *, n, a-b, each with an optional /step."""
    for part in field.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            low, high = 0, 99
        elif "-" in base:
            low, high = (int(x) for x in base.split("-"))
        else:
            low = high = int(base)
            if step:
                high = 99
        if low <= value <= high and (value - low) % int(step or 1) == 0:
            return True
    return False


def _exists_in(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _oracle_days(expression: str, zone: ZoneInfo, days: list[date]) -> set[datetime]:
    """Debian cron's fires whose wall time falls on one of `days`, by walking every minute."""
    minute, hour, dom, month, dow = expression.split()
    fixed_hour = not hour.startswith("*")
    fires: set[datetime] = set()
    for day in days:
        if not (_matches(dom, day.day) and _matches(month, day.month)):
            continue
        if not _matches(dow, day.isoweekday() % 7):
            continue
        for h in range(24):
            for m in range(60):
                if not (_matches(hour, h) and _matches(minute, m)):
                    continue
                wall = datetime(day.year, day.month, day.day, h, m)  # noqa: DTZ001
                if not _exists_in(wall, zone):
                    if fixed_hour:  # the first wall minute that exists after the jump
                        moved = wall
                        while not _exists_in(moved, zone):
                            moved += timedelta(minutes=1)
                        fires.add(moved.replace(tzinfo=zone).astimezone(UTC))
                    continue
                first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
                second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
                fires.add(first)
                if second != first and not fixed_hour:
                    fires.add(second)
    return fires


@cache
def _transition_days(zone_name: str, year: int) -> tuple[tuple[date, timedelta], ...]:
    """Local dates in or next to `year` on which the zone's UTC offset changes (sampled every
    6 hours: within 6 hours of the change), each with the size of the change."""
    zone = ZoneInfo(zone_name)
    found = []
    at = datetime(year - 1, 12, 31, tzinfo=UTC)
    offset = at.astimezone(zone).utcoffset() or timedelta()
    while at < datetime(year + 1, 1, 2, tzinfo=UTC):
        at += timedelta(hours=6)
        now = at.astimezone(zone).utcoffset() or timedelta()
        if now != offset:
            found.append((at.astimezone(zone).date(), now - offset))
            offset = now
    return tuple(found)


@pytest.mark.parametrize(("zone_name", "year"), ODD_SHIFTS)
@pytest.mark.parametrize("expression", ODD_EXPRESSIONS)
def test_fires_match_oracle_around_non_hour_shifts(
    expression: str, zone_name: str, year: int
) -> None:
    """Around every transition of a zone whose clocks move by other than an hour, the fires
    equal Debian cron's, minute by minute."""
    zone = ZoneInfo(zone_name)
    transitions = _transition_days(zone_name, year)
    assert any(abs(shift) != timedelta(hours=1) for _, shift in transitions), (
        "the table names a zone and year with a shift other than one hour"
    )
    schedule = Schedule(Cron(expression, zone_name))
    for day, _ in transitions:
        # The change happened on `day` or the day before: compare both days, whole.
        days = [day + timedelta(days=n) for n in (-2, -1, 0, 1)]
        low = datetime.combine(days[1], time()).replace(tzinfo=zone).astimezone(UTC)
        high = datetime.combine(days[3], time()).replace(tzinfo=zone).astimezone(UTC)
        expected = {f for f in _oracle_days(expression, zone, days) if low <= f < high}
        assert _until(schedule, low - timedelta(microseconds=1), high) == sorted(expected), (
            f"{expression} in {zone_name} on {days[1]} and {days[2]}"
        )
