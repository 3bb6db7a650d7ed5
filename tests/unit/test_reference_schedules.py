"""The reference deployment's 11 Sydney schedules, checked for a whole year.

The expected instants come from an independent oracle written here: it walks every local
minute of 2026, keeps those whose wall time matches, and applies Debian cron's DST rules
itself (a fixed-time slot in a skipped hour runs at the transition; in a repeated hour once;
a wildcard-hour slot runs per real hour). It shares no code with the scheduler.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
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
