"""Cron across DST transitions: Debian cron's rules, in four zones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import Cron, Schedule


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _fires_on_local_day(expression: str, zone: str, day: str) -> list[datetime]:
    """Every fire whose local date is `day`."""
    cron = Cron(expression, zone)
    schedule = Schedule(cron)
    start = datetime.fromisoformat(day).replace(tzinfo=cron.tz) - timedelta(hours=1)
    out = []
    for fire in schedule.fires(start.astimezone(UTC)):
        local_day = fire.astimezone(cron.tz).date().isoformat()
        if local_day > day:
            break
        if local_day == day:
            out.append(fire)
    return out


# (zone, local day, kind, the single expected UTC instant of a daily 02:30 job)
DAILY_0230 = [
    # Sydney: clocks go back 03:00 AEDT -> 02:00 AEST; 02:30 happens twice, runs the first.
    ("Australia/Sydney", "2026-04-05", "repeated", "2026-04-04T15:30"),
    # Sydney: clocks go forward 02:00 AEST -> 03:00 AEDT; 02:30 never happens, runs at 03:00.
    ("Australia/Sydney", "2026-10-04", "skipped", "2026-10-03T16:00"),
    ("America/New_York", "2026-03-08", "skipped", "2026-03-08T07:00"),
    # New York goes back at 02:00 EDT -> 01:00 EST: the repeated hour is 01:xx, 02:30 is normal.
    ("America/New_York", "2026-11-01", "normal", "2026-11-01T07:30"),
    # London changes at 01:00 local, so 02:30 is untouched on both days: one normal run.
    ("Europe/London", "2026-03-29", "normal", "2026-03-29T01:30"),
    ("Europe/London", "2026-10-25", "normal", "2026-10-25T02:30"),
]


@pytest.mark.parametrize(("zone", "day", "kind", "expected"), DAILY_0230)
def test_daily_job_fires_exactly_once_on_transition_days(
    zone: str, day: str, kind: str, expected: str
) -> None:
    """A daily 02:30 job fires once on a DST day, at the Debian-cron instant."""
    assert _fires_on_local_day("30 2 * * *", zone, day) == [_utc(expected)], kind


# Where the moving hour is 01:xx (London both ways, New York in autumn).
@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("Europe/London", "2026-03-29", "2026-03-29T01:00"),  # 01:30 skipped: 02:00 BST
        ("Europe/London", "2026-10-25", "2026-10-25T00:30"),  # 01:30 twice: BST copy
        ("America/New_York", "2026-11-01", "2026-11-01T05:30"),  # 01:30 twice: EDT copy
    ],
)
def test_0130_job_is_moved_or_run_once(zone: str, day: str, expected: str) -> None:
    """A 01:30 job runs right after a skipped hour, and once in a repeated hour."""
    assert _fires_on_local_day("30 1 * * *", zone, day) == [_utc(expected)]


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Australia/Sydney", "2026-04-05", 25),
        ("Australia/Sydney", "2026-10-04", 23),
        ("America/New_York", "2026-03-08", 23),
        ("America/New_York", "2026-11-01", 25),
        ("Europe/London", "2026-03-29", 23),
        ("Europe/London", "2026-10-25", 25),
        ("Australia/Sydney", "2026-06-01", 24),
    ],
)
def test_hourly_job_fires_once_per_real_hour(zone: str, day: str, hours: int) -> None:
    """An hourly job fires once per hour that really passes: 23, 24 or 25 times a day."""
    fires = _fires_on_local_day("0 * * * *", zone, day)
    assert len(fires) == hours
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(fires))


def test_wildcard_hour_job_runs_in_both_copies_of_repeated_hour() -> None:
    """`0 */2 * * *` runs at both 02:00s when Sydney's clocks go back."""
    fires = _fires_on_local_day("0 */2 * * *", "Australia/Sydney", "2026-04-05")
    assert [f.isoformat() for f in fires[:3]] == [
        "2026-04-04T13:00:00+00:00",  # 00:00 AEDT
        "2026-04-04T15:00:00+00:00",  # 02:00 AEDT
        "2026-04-04T16:00:00+00:00",  # 02:00 AEST, the repeated hour
    ]
    assert len(fires) == 13


def test_wildcard_hour_job_skips_the_missing_hour() -> None:
    """`0 */2 * * *` has no 02:00 run when Sydney's clocks go forward."""
    fires = _fires_on_local_day("0 */2 * * *", "Australia/Sydney", "2026-10-04")
    sydney = Cron("@daily", "Australia/Sydney").tz
    local_hours = [f.astimezone(sydney).hour for f in fires]
    assert local_hours == [0, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]


def test_preview_notes_where_dst_shaped_the_fire() -> None:
    """The preview says which fire left a skipped hour and which is first of a repeated one."""
    schedule = Schedule(Cron("30 2 * * *", "Australia/Sydney"))
    spring = schedule.preview(_utc("2026-10-03T00:00"), 2)
    assert [(p.utc, p.local.strftime("%H:%M %Z")) for p in spring] == [
        (_utc("2026-10-03T16:00"), "03:00 AEDT"),
        (_utc("2026-10-04T15:30"), "02:30 AEDT"),
    ]
    assert spring[0].note is not None
    assert "skipped hour" in spring[0].note
    assert spring[1].note is None
    autumn = schedule.preview(_utc("2026-04-04T00:00"), 1)
    assert autumn[0].note == "first of a repeated hour (clocks go back); runs once"


def test_preview_marks_second_copy_for_wildcard_hour_jobs() -> None:
    """A job that runs in both copies of a repeated hour has both labelled."""
    schedule = Schedule(Cron("0 */2 * * *", "Australia/Sydney"))
    notes = [p.note for p in schedule.preview(_utc("2026-04-04T14:30"), 3)]
    assert notes == [
        "first of a repeated hour (clocks go back)",
        "second of a repeated hour (clocks went back)",
        None,
    ]


def test_next_fire_from_inside_second_copy_does_not_go_back() -> None:
    """Asked from the second 02:10 of a repeated hour, a 02:30 job waits until tomorrow."""
    schedule = Schedule(Cron("30 2 * * *", "Australia/Sydney"))
    after = _utc("2026-04-04T16:10")  # 02:10 AEST, the second copy; 02:30 already fired
    assert schedule.next_fire(after) == _utc("2026-04-05T16:30")


def test_preview_note_names_the_jump_clocks_made() -> None:
    """The note of a moved slot says where the clocks jumped from and to (02:00 -> 03:00)."""
    [fire] = Schedule(Cron("30 2 * * *", "Australia/Sydney")).preview(_utc("2026-10-03T00:00"), 1)
    assert fire.note == (
        "moved out of a skipped hour: clocks went forward from 02:00 to 03:00, "
        "so the slot runs at 03:00"
    )


def test_preview_note_names_a_half_hour_jump() -> None:
    """On Lord Howe the note names the 30-minute jump from 02:00 to 02:30."""
    [fire] = Schedule(Cron("15 2 * * *", "Australia/Lord_Howe")).preview(
        _utc("2026-10-03T00:00"), 1
    )
    assert (fire.utc, fire.note) == (
        _utc("2026-10-03T15:30"),
        "moved out of a skipped half hour: clocks went forward from 02:00 to 02:30, "
        "so the slot runs at 02:30",
    )


LORD_HOWE = "Australia/Lord_Howe"


@pytest.mark.parametrize(
    ("expression", "day", "expected_local"),
    [
        # April: clocks go back 02:00 (+11) -> 01:30 (+10:30); 01:30-01:59 happens twice.
        ("*/15 1 * * *", "2026-04-05", ["01:00+11", "01:15+11", "01:30+11", "01:45+11"]),
        ("*/15 2 * * *", "2026-04-05", ["02:00+1030", "02:15+1030", "02:30+1030", "02:45+1030"]),
        ("*/20 2 * * *", "2026-04-05", ["02:00+1030", "02:20+1030", "02:40+1030"]),
        # October: clocks go forward 02:00 (+10:30) -> 02:30 (+11); 02:00 and 02:20 run once
        # at the jump.
        ("*/20 2 * * *", "2026-10-04", ["02:30+11", "02:40+11"]),
    ],
)
def test_fixed_hour_stepped_minutes_on_lord_howe(
    expression: str, day: str, expected_local: list[str]
) -> None:
    """A fixed hour with stepped minutes runs every slot once on Lord Howe's 30-minute DST
    days: none missed, none repeated."""
    zone = Cron("@daily", LORD_HOWE).tz
    fires = _fires_on_local_day(expression, LORD_HOWE, day)
    local = [f.astimezone(zone).strftime("%H:%M%z").removesuffix("00") for f in fires]
    assert local == expected_local


def test_wildcard_hour_on_lord_howe_keeps_the_two_hourly_slot() -> None:
    """`0 */2 * * *` still runs at 02:00 after Lord Howe's clocks went back to 01:30."""
    zone = Cron("@daily", LORD_HOWE).tz
    fires = _fires_on_local_day("0 */2 * * *", LORD_HOWE, "2026-04-05")
    assert [f.astimezone(zone).hour for f in fires] == list(range(0, 24, 2))
