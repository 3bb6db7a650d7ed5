"""Schedules: validation messages, triggers, windows, run limits and misfire plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub_scheduler import (
    Cron,
    Every,
    InvalidCronError,
    InvalidScheduleError,
    MisfirePolicy,
    Once,
    Schedule,
    SlotOutcome,
    UnknownTimezoneError,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("*/0 * * * *", "bad minute field '*/0': step '0' must be a whole number of at least 1"),
        ("61 * * * *", "bad minute field '61': allowed values are 0-59"),
        ("0 24 * * *", "bad hour field '24': allowed values are 0-23"),
        ("0 0 * 13 *", "bad month field '13': allowed values are 1-12 or JAN-DEC"),
        ("0 0 * * 8", "bad day-of-week field '8': allowed values are 0-7 or SUN-SAT"),
        ("0 0 30 2 *", "day 30 never occurs in month(s) '2', so it would never run"),
        ("* * * * * *", "it has 6 fields but cron needs 5"),
        ("0 8 * *", "it has 4 fields but cron needs 5"),
        ("", "it is empty"),
        ("@fortnightly", "unknown nickname '@fortnightly'"),
    ],
)
def test_invalid_cron_says_what_to_fix(expression: str, message: str) -> None:
    """Each invalid expression is refused with a message naming the broken part."""
    with pytest.raises(InvalidCronError) as caught:
        Cron(expression)
    assert message in str(caught.value)
    assert caught.value.expression == expression


def test_unknown_timezone_suggests_close_names() -> None:
    """A misspelt zone is refused and the message suggests the right one."""
    with pytest.raises(UnknownTimezoneError) as caught:
        Cron("0 8 * * *", "Australia/Sidney")
    assert "Australia/Sydney" in caught.value.suggestions
    assert "unknown time zone 'Australia/Sidney'" in str(caught.value)


@pytest.mark.parametrize("zone", ["Mars/Base", "../../etc/passwd", "", "UTC+5"])
def test_garbage_timezones_are_refused(zone: str) -> None:
    """Names that are not IANA zones (or try to be paths) raise UnknownTimezoneError."""
    with pytest.raises(UnknownTimezoneError):
        Cron("0 8 * * *", zone)


@pytest.mark.parametrize(
    ("alias", "expression"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases_expand_to_five_fields(alias: str, expression: str) -> None:
    """Cron nicknames are stored as their five-field expression."""
    assert Cron(alias).expression == expression


def test_end_before_start_is_refused() -> None:
    """A schedule that ends before it starts is refused, naming both instants."""
    with pytest.raises(InvalidScheduleError, match="is before the start"):
        Schedule(Cron("@daily"), start=T0, end=T0 - timedelta(days=1))


def test_naive_datetimes_are_refused() -> None:
    """A start without a time zone is ambiguous, so it is refused."""
    with pytest.raises(InvalidScheduleError, match="has no time zone"):
        Schedule(Cron("@daily"), start=datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize("seconds", [0, 0.5])
def test_every_needs_at_least_one_second(seconds: float) -> None:
    """Intervals under a second are refused."""
    with pytest.raises(InvalidScheduleError, match="at least 1 second"):
        Every(timedelta(seconds=seconds))


def test_every_slots_are_aligned_to_epoch_without_start() -> None:
    """Without a start, interval slots fall on epoch multiples, the same for every replica."""
    schedule = Schedule(Every(timedelta(minutes=15)))
    assert schedule.next_fire(T0 + timedelta(minutes=7)) == T0 + timedelta(minutes=15)
    assert schedule.next_fire(T0 + timedelta(minutes=15)) == T0 + timedelta(minutes=30)


def test_every_with_start_fires_at_start_then_each_interval() -> None:
    """With a start, the first slot is the start itself, then one per interval."""
    start = T0 + timedelta(seconds=7)
    schedule = Schedule(Every(timedelta(seconds=10)), start=start)
    assert list(schedule.due(T0, start + timedelta(seconds=25))) == [
        start,
        start + timedelta(seconds=10),
        start + timedelta(seconds=20),
    ]


def test_once_fires_a_single_time() -> None:
    """A one-off fires at its instant and never again."""
    schedule = Schedule(Once(T0))
    assert schedule.next_fire(T0 - timedelta(seconds=1)) == T0
    assert schedule.next_fire(T0) is None


def test_end_and_max_runs_finish_a_schedule() -> None:
    """Nothing fires after the end or after the last allowed run."""
    hourly = Cron("@hourly")
    ended = Schedule(hourly, end=T0 + timedelta(hours=2))
    assert list(ended.fires(T0)) == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    limited = Schedule(hourly, max_runs=3)
    assert len(list(limited.fires(T0))) == 3
    assert limited.next_fire(T0, runs_so_far=3) is None


def test_start_in_the_future_defers_first_fire() -> None:
    """A cron schedule with a later start first fires at its first slot at or after the start."""
    schedule = Schedule(Cron("0 8 * * *"), start=T0 + timedelta(days=2, hours=8))
    assert schedule.next_fire(T0) == T0 + timedelta(days=2, hours=8)


def test_describe_in_words() -> None:
    """Schedules explain themselves for the admin pages."""
    assert Schedule(Cron("30 9 * * *", "Australia/Sydney")).describe() == (
        "At 09:30 every day (Australia/Sydney)"
    )
    assert Every(timedelta(hours=2)).describe() == "Every 2 hours"
    assert Every(timedelta(seconds=90)).describe() == "Every 90 seconds"
    assert Schedule(Every(timedelta(minutes=1)), max_runs=5).describe() == (
        "Every minute, at most 5 runs"
    )


def _slots(hours: int) -> list[datetime]:
    """Hourly slots over an outage of `hours`, the newest one hour before now."""
    return [T0 + timedelta(hours=h) for h in range(hours)]


NOW = T0 + timedelta(hours=3)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MisfirePolicy.skip(), ["missed", "missed", "missed"]),
        (MisfirePolicy.run_once(), ["coalesced", "coalesced", "late"]),
        (MisfirePolicy.catch_up(2), ["missed", "late", "late"]),
        (MisfirePolicy.catch_up(10), ["late", "late", "late"]),
        (MisfirePolicy.skip(grace=timedelta(hours=2)), ["missed", "enqueued", "enqueued"]),
    ],
)
def test_misfire_policy_after_three_hour_outage(policy: MisfirePolicy, expected: list[str]) -> None:
    """After 3 h down, each policy gives each overdue hourly slot its outcome."""
    plan = policy.plan(_slots(3), NOW)
    assert [d.outcome.value for d in plan] == expected
    assert [d.slot for d in plan] == _slots(3)


def test_slot_within_grace_is_on_time_for_every_policy() -> None:
    """A slot found 30 s late with a 60 s grace simply fires."""
    for policy in (MisfirePolicy.skip(), MisfirePolicy.run_once(), MisfirePolicy.catch_up(3)):
        [decision] = policy.plan([NOW - timedelta(seconds=30)], NOW)
        assert decision.outcome is SlotOutcome.ENQUEUED
        assert decision.fires


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"grace": timedelta(seconds=-1)}, "misfire grace"),
        ({"max_runs": 0}, "misfire max_runs"),
    ],
)
def test_bad_misfire_settings_are_refused(kwargs: dict[str, object], field: str) -> None:
    """Negative grace or a zero catch-up limit is refused with the field named."""
    with pytest.raises(InvalidScheduleError) as caught:
        MisfirePolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_preview_count_is_bounded() -> None:
    """Asking for 0 or more than 1000 previews is refused."""
    schedule = Schedule(Cron("@daily"))
    with pytest.raises(InvalidScheduleError):
        schedule.preview(T0, 0)
    assert len(schedule.preview(T0, 1000)) == 1000


def test_due_stops_at_its_limit() -> None:
    """A year of one-second slots is not computed when only the first few are wanted."""
    schedule = Schedule(Every(timedelta(seconds=1)))
    slots = schedule.due(T0, T0 + timedelta(days=365), limit=5)
    assert slots == [T0 + timedelta(seconds=s) for s in range(1, 6)]


@pytest.mark.parametrize(
    "trigger",
    [Cron("@daily"), Cron("*/15 1 * * *", "Australia/Lord_Howe"), Every(timedelta(days=1))],
)
def test_instants_at_the_ends_of_the_calendar_end_the_schedule(trigger: Cron | Every) -> None:
    """A window starting on the last day a datetime holds ends there (at most its start
    fires, never a crash); a start that is out of range in UTC is refused as invalid."""
    last = datetime(9999, 12, 31, tzinfo=UTC)
    assert len(list(Schedule(trigger, start=last).fires(T0))) <= 1
    with pytest.raises(InvalidScheduleError, match="out of range"):
        Schedule(trigger, start=datetime.min.replace(tzinfo=timezone(timedelta(hours=5))))
    first = Schedule(trigger, start=datetime.min.replace(tzinfo=UTC))
    assert first.next_fire(datetime.min.replace(tzinfo=UTC)) is not None
