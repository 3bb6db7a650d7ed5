"""Planning a fire ahead of time: which slots, which delays, which misfires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub_scheduler import Every, MisfirePolicy, Schedule, SlotOutcome
from hub_scheduler.domain.firing import plan_fire
from hub_scheduler.domain.model import Priority
from hub_scheduler.domain.ports import ScheduleState

T0 = datetime(2026, 6, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _state(first: datetime, *, paused: bool = False) -> ScheduleState:
    schedule = Schedule(Every(MINUTE), job="tick", id="tick:0", misfire=MisfirePolicy.skip(MINUTE))
    return ScheduleState(schedule, first, paused=paused)


def test_slots_within_the_lookahead_are_planned_delayed_to_their_instant() -> None:
    """Fired at 10:00:30 up to 10:02:30: the due slot runs now, the next two wait for theirs."""
    now = T0 + timedelta(seconds=30)
    plan = plan_fire(_state(T0), now, Priority.NORMAL, until=now + 2 * MINUTE)

    assert plan is not None
    assert [d.slot for d in plan.decisions] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    assert [r.run_at for r in plan.requests] == [None, T0 + MINUTE, T0 + 2 * MINUTE]
    assert plan.next_fire == T0 + 3 * MINUTE


def test_misfires_are_judged_against_now_not_the_lookahead() -> None:
    """A slot 50 s overdue is on time under a 60 s grace, however far ahead the plan looks."""
    now = T0 + timedelta(seconds=50)
    plan = plan_fire(_state(T0), now, Priority.NORMAL, until=now + timedelta(seconds=59))

    assert plan is not None
    assert [d.outcome for d in plan.decisions] == [SlotOutcome.ENQUEUED, SlotOutcome.ENQUEUED]


def test_a_paused_schedule_ledgers_the_slots_ahead_as_paused() -> None:
    """Paused, the slots within the lookahead are ledgered paused and nothing is enqueued."""
    plan = plan_fire(_state(T0, paused=True), T0, Priority.NORMAL, until=T0 + MINUTE)

    assert plan is not None
    assert [d.outcome for d in plan.decisions] == [SlotOutcome.PAUSED, SlotOutcome.PAUSED]
    assert plan.requests == ()


def test_without_a_lookahead_nothing_ahead_is_planned() -> None:
    """An `until` before now changes nothing: only the slots due now."""
    plan = plan_fire(_state(T0), T0, Priority.NORMAL, until=T0 - MINUTE)

    assert plan is not None
    assert [d.slot for d in plan.decisions] == [T0]
    assert plan.requests[0].run_at is None
