"""Planning a fire: which due slots of a schedule run, which are ledgered otherwise, and
where the schedule goes next. Pure; the scheduler loop (``hub_scheduler.runtime``) asks the
store to carry the plan out with a compare-and-advance."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import attrs

from hub_scheduler.domain.model import Priority, RunTrigger
from hub_scheduler.domain.ports import EnqueueRequest, ScheduleState
from hub_scheduler.domain.schedule import MisfireKind, Schedule, SlotDecision, SlotOutcome

#: Slots ledgered one by one per fire; older overdue slots beyond it are ledgered in bulk.
MAX_SLOTS = 10_000
#: After a very long outage, only slots within this of now are planned individually.
RECENT = timedelta(hours=1)


#: Counting a bulk-missed range stops here (a counter, not a promise of precision).
MAX_COUNTED = 1_000_000


def _split_outage(schedule: Schedule, first: datetime, now: datetime) -> tuple[int, list[datetime]]:
    """Slots overdue since `first`: how many are older than `RECENT`, and the recent ones."""
    recent = schedule.due(now - RECENT - timedelta(microseconds=1), now)[-MAX_SLOTS:]
    older = itertools.takewhile(
        lambda slot: not recent or slot < recent[0],
        schedule.fires(first - timedelta(microseconds=1)),
    )
    return max(1, sum(1 for _ in itertools.islice(older, MAX_COUNTED))), recent


@attrs.frozen
class FirePlan:
    """What firing a schedule's due slots does.

    Attributes:
        decisions: every due slot with its outcome, oldest first.
        requests: one run per firing decision, in order.
        next_fire: where the schedule goes next (None once it is over).
        bulk_missed: with more than 1, the first decision stands for that many missed slots.
    """

    decisions: tuple[SlotDecision, ...]
    requests: tuple[EnqueueRequest, ...]
    next_fire: datetime | None
    bulk_missed: int = 0


def plan_fire(
    state: ScheduleState, now: datetime, priority: Priority, until: datetime | None = None
) -> FirePlan | None:
    """The plan for the slots of `state` due at `now`; None when it will never fire again.

    Runs get `priority` (the job's). A paused schedule ledgers its slots as paused; otherwise
    its misfire policy decides. After a very long outage the oldest slots are ledgered as one
    bulk "missed" record and only the last hour's are planned one by one.

    With `until` after `now`, the slots up to `until` are planned too (firing ahead): each
    such run is enqueued delayed to its slot (`EnqueueRequest.run_at`), so it becomes ready
    on the instant rather than when a busy scheduler gets to it. Misfires are still judged
    against `now`.
    """
    schedule = state.schedule
    if state.next_fire is None:
        return None
    horizon = until if until is not None and until > now else now
    slots = [state.next_fire, *schedule.due(state.next_fire, horizon, state.runs + 1, MAX_SLOTS)]
    bulk = 0
    decisions: list[SlotDecision] = []
    if len(slots) > MAX_SLOTS:
        bulk, slots = _split_outage(schedule, state.next_fire, now)
        decisions.append(SlotDecision(state.next_fire, SlotOutcome.MISSED))
    if state.paused:
        decisions += [SlotDecision(s, SlotOutcome.PAUSED) for s in slots]
    else:
        decisions += schedule.misfire.plan(slots, now)
    if bulk and schedule.misfire.kind is MisfireKind.RUN_ONCE:
        decisions[0] = SlotDecision(decisions[0].slot, SlotOutcome.COALESCED)
    firing = [d for d in decisions if d.fires]
    requests = tuple(
        EnqueueRequest(
            job=schedule.job,
            payload=schedule.payload,
            priority=priority,
            trigger=RunTrigger.SCHEDULE,
            schedule_id=schedule.id,
            slot=d.slot,
            run_at=d.slot if d.slot > now else None,
        )
        for d in firing
    )
    next_fire = schedule.next_fire(decisions[-1].slot, state.runs + len(firing))
    return FirePlan(tuple(decisions), requests, next_fire, bulk)
