"""The admin use cases over every backend: each action is carried out on the backend's ports
and audited once, with the actor, the channel and the outcome; an action the domain refuses is
audited as failed and its error re-raised."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler import Cron, Every, JobDefinition, Priority, RunState, Schedule
from hub_scheduler.domain.admin import Actor, AdminService, QueueStatus
from hub_scheduler.domain.errors import (
    DeadLetterNotFoundError,
    DeclaredScheduleError,
    IllegalTransitionError,
    JobNotFoundError,
    ScheduleExistsError,
    ScheduleNotFoundError,
)
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import (
    AuditEntry,
    EnqueueRequest,
    Failed,
    SchedulerInfo,
    Succeeded,
    WorkerInfo,
)
from hub_scheduler.domain.registry import JobContext, Registry
from hub_scheduler.domain.retry import GiveUp
from tests.contract.conftest import Subject

ALICE = Actor("alice", ("SystemAdmin",), channel="cli", client="10.0.0.8", request_id="req-1")
LEASE = timedelta(seconds=30)


async def _noop(ctx: JobContext) -> None:
    del ctx


def _admin(backend: Subject) -> AdminService:
    registry = Registry()
    registry.add(JobDefinition("syncXero", priority="high"), _noop)
    registry.add(JobDefinition("report"), _noop)
    return AdminService(backend.backend, registry, backend.clock)


async def _trail(backend: Subject) -> list[AuditEntry]:
    """The audit trail, oldest first (each action below happens a second after the last)."""
    return list((await backend.audit.list(limit=100)).items)[::-1]


def _what(entries: list[AuditEntry]) -> list[tuple[str, str, str]]:
    return [(e.action, e.target, e.outcome) for e in entries]


async def test_trigger_enqueues_and_records_who_did_it_and_how(backend: Subject) -> None:
    """A trigger enqueues at the job's priority; its entry names actor, roles, channel,
    client, request id and the new run."""
    admin = _admin(backend)
    run_id = await admin.trigger(ALICE, "syncXero", {"full": True})
    run = await backend.history.get(run_id)
    assert (run.job, run.priority, run.payload) == ("syncXero", Priority.HIGH, {"full": True})
    [entry] = await _trail(backend)
    assert entry == AuditEntry(
        id=entry.id,
        at=backend.clock.now(),
        actor="alice",
        roles=("SystemAdmin",),
        action="job.trigger",
        target="syncXero",
        outcome="ok",
        request_id="req-1",
        client="10.0.0.8",
        after={"run_id": run_id},
        channel="cli",
    )


async def test_refused_actions_are_audited_as_failed_and_reraised(backend: Subject) -> None:
    """An unknown job, cancelling a finished run and retrying a missing dead letter each raise
    the domain's error, and each leaves a failed entry with the reason."""
    admin = _admin(backend)
    with pytest.raises(JobNotFoundError):
        await admin.trigger(ALICE, "nope")
    backend.clock.advance(1)
    run_id = await admin.trigger(ALICE, "report")
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Succeeded())
    backend.clock.advance(1)
    with pytest.raises(IllegalTransitionError):
        await admin.cancel(ALICE, run_id)
    backend.clock.advance(1)
    with pytest.raises(DeadLetterNotFoundError):
        await admin.retry_dead(ALICE, "gone")
    trail = await _trail(backend)
    assert _what(trail) == [
        ("job.trigger", "nope", "failed"),
        ("job.trigger", "report", "ok"),
        ("run.cancel", run_id, "failed"),
        ("dlq.retry", "gone", "failed"),
    ]
    assert [(e.detail, e.after, e.channel) for e in trail if e.outcome == "failed"] == [
        ("job 'nope' not found", None, "cli"),
        (f"run {run_id} cannot go from 'succeeded' to 'cancelled'", None, "cli"),
        ("dead letter 'gone' not found", None, "cli"),
    ]


async def test_pausing_and_resuming_the_queue_and_a_job(backend: Subject) -> None:
    """Pause and resume reach the queue's flags and are audited with the new state."""
    admin = _admin(backend)
    await admin.set_queue_paused(ALICE, paused=True)
    backend.clock.advance(1)
    await admin.set_job_paused(ALICE, "report", paused=True)
    snapshot = await backend.queue.snapshot()
    assert (snapshot.paused, snapshot.paused_jobs) == (True, frozenset({"report"}))
    backend.clock.advance(1)
    await admin.set_queue_paused(ALICE, paused=False)
    backend.clock.advance(1)
    await admin.set_job_paused(ALICE, "report", paused=False)
    snapshot = await backend.queue.snapshot()
    assert (snapshot.paused, snapshot.paused_jobs) == (False, frozenset())
    trail = await _trail(backend)
    assert [(e.action, e.target, e.after) for e in trail] == [
        ("queue.pause", "queue", {"paused": True}),
        ("job.pause", "report", {"paused": True}),
        ("queue.resume", "queue", {"paused": False}),
        ("job.resume", "report", {"paused": False}),
    ]


async def test_cancel_a_waiting_run(backend: Subject) -> None:
    """Cancelling a queued run cancels it and records the state it ended in."""
    admin = _admin(backend)
    run_id = await admin.trigger(ALICE, "report")
    backend.clock.advance(1)
    cancelled = await admin.cancel(ALICE, run_id)
    assert (cancelled.state, (await backend.history.get(run_id)).state) == (
        RunState.CANCELLED,
        RunState.CANCELLED,
    )
    assert (await _trail(backend))[-1].after == {"state": "cancelled"}


async def test_cancelling_a_running_run_is_audited_as_a_request(backend: Subject) -> None:
    """A running run is asked to stop: the entry says who asked and that it was requested."""
    admin = _admin(backend)
    run_id = await admin.trigger(ALICE, "report")
    await backend.queue.claim("w1", 1, LEASE)
    backend.clock.advance(1)
    run = await admin.cancel(ALICE, run_id)
    assert (run.state, run.cancel_requested_at) == (RunState.ACTIVE, backend.clock.now())
    entry = (await _trail(backend))[-1]
    assert (entry.actor, entry.action, entry.target, entry.after) == (
        ALICE.subject,
        "run.cancel",
        run_id,
        {"state": "active", "cancel_requested": True},
    )


async def test_dead_letter_actions_are_audited_with_their_results(backend: Subject) -> None:
    """Retry one, retry all, delete and purge act on the dead letters and record results."""
    admin = _admin(backend)
    ids = [await admin.trigger(ALICE, "report") for _ in range(4)]
    for claim in await backend.queue.claim("w1", 4, LEASE):
        await backend.queue.finish(claim, Failed(ErrorInfo("ValueError", "x"), GiveUp(1)))
    backend.clock.advance(1)
    retried = await admin.retry_dead(ALICE, ids[0])
    backend.clock.advance(1)
    await admin.delete_dead(ALICE, ids[1])
    backend.clock.advance(1)
    assert len(await admin.retry_all_dead(ALICE)) == 2
    for claim in await backend.queue.claim("w1", 4, LEASE):
        await backend.queue.finish(claim, Failed(ErrorInfo("ValueError", "x"), GiveUp(1)))
    backend.clock.advance(1)
    assert await admin.purge_dead(ALICE) == 3
    trail = (await _trail(backend))[4:]
    assert [(e.action, e.target, e.after) for e in trail] == [
        ("dlq.retry", ids[0], {"run_id": retried}),
        ("dlq.delete", ids[1], None),
        ("dlq.retry_all", "dlq", {"count": 2}),
        ("dlq.purge", "dlq", {"removed": 3}),
    ]
    assert (await backend.queue.snapshot()).dead == 0


async def test_clean_history_records_what_it_removed(backend: Subject) -> None:
    """Cleaning removes old finished runs and records how many, the age and the states."""
    admin = _admin(backend)
    await admin.trigger(ALICE, "report")
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Succeeded())
    backend.clock.advance(timedelta(days=31))
    assert await admin.clean_history(ALICE, timedelta(days=30)) == 1
    [*_, entry] = await _trail(backend)
    assert (entry.action, entry.target, entry.after) == (
        "history.clean",
        "history",
        {"removed": 1, "older_than_days": 30.0, "states": ["cancelled", "dead", "succeeded"]},
    )


async def test_schedule_edits_record_before_and_after(backend: Subject) -> None:
    """Create, update, pause and delete a schedule: each entry says what it was and became;
    a schedule for an unregistered job or a missing id is refused and audited as failed."""
    admin = _admin(backend)
    sydney = Schedule(Cron("0 2 * * *", "Australia/Sydney"), job="syncXero", id="nightly")
    await admin.create_schedule(ALICE, sydney)
    backend.clock.advance(1)
    await admin.update_schedule(ALICE, Schedule(Every(timedelta(hours=6)), job="syncXero",
                                                id="nightly"))  # fmt: skip
    backend.clock.advance(1)
    await admin.set_schedule_paused(ALICE, "nightly", paused=True)
    backend.clock.advance(1)
    await admin.delete_schedule(ALICE, "nightly")
    backend.clock.advance(1)
    with pytest.raises(JobNotFoundError):
        await admin.create_schedule(ALICE, Schedule(Cron("@daily"), job="nope", id="x"))
    backend.clock.advance(1)
    with pytest.raises(ScheduleNotFoundError):
        await admin.delete_schedule(ALICE, "nightly")
    nightly = {
        "job": "syncXero",
        "trigger": "At 02:00 every day (Australia/Sydney)",
        "timezone": "Australia/Sydney",
        "paused": False,
        "next_fire": "2026-06-01T16:00:00Z",  # 02:00 AEST on 2 June
    }
    six_hourly = {**nightly, "trigger": "Every 6 hours", "timezone": "UTC",
                  "next_fire": "2026-06-01T06:00:00Z"}  # fmt: skip
    trail = await _trail(backend)
    assert [(e.action, e.target, e.outcome, e.before, e.after) for e in trail] == [
        ("schedule.create", "nightly", "ok", None, nightly),
        ("schedule.update", "nightly", "ok", nightly, six_hourly),
        ("schedule.pause", "nightly", "ok", None, {"paused": True}),
        ("schedule.delete", "nightly", "ok", {**six_hourly, "paused": True}, None),
        ("schedule.create", "x", "failed", None, None),
        ("schedule.delete", "nightly", "failed", None, None),
    ]


async def test_code_owns_declared_schedules_admins_may_pause_them(backend: Subject) -> None:
    """A schedule declared in code cannot be edited, deleted or shadowed by an admin (each
    refusal is audited as failed, and nothing changes); it can be paused, and the pause
    survives the next scheduler start's sync. Runtime schedules stay fully editable."""
    registry = Registry()
    registry.add(JobDefinition("minutely", schedules=[Cron("* * * * *")]), _noop)
    admin = AdminService(backend.backend, registry, backend.clock)
    backend.declare("minutely", [Cron("* * * * *")])
    await backend.sync()
    five = Schedule(Cron("*/5 * * * *"), job="minutely", id="minutely:0")
    with pytest.raises(DeclaredScheduleError, match="declared in code"):
        await admin.edit_schedule(ALICE, "minutely:0", lambda _: five)
    with pytest.raises(DeclaredScheduleError):
        await admin.update_schedule(ALICE, five)
    with pytest.raises(DeclaredScheduleError):
        await admin.delete_schedule(ALICE, "minutely:0")
    await admin.set_schedule_paused(ALICE, "minutely:0", paused=True)
    await backend.sync()  # the next scheduler start
    state = await backend.schedules.get("minutely:0")
    assert (state.schedule.trigger, state.paused, state.declared) == (
        Cron("* * * * *"),
        True,
        True,
    )
    with pytest.raises(ScheduleExistsError, match="declared in code"):
        await admin.create_schedule(ALICE, five)
    mine = Schedule(Cron("@hourly"), job="minutely", id="mine")
    await admin.create_schedule(ALICE, mine)
    await admin.edit_schedule(ALICE, "mine", lambda s: Schedule(Cron("@daily"), job=s.job))
    await admin.delete_schedule(ALICE, "mine")
    assert sorted(_what(await _trail(backend))) == sorted(
        [  # all at one instant: any order
            ("schedule.update", "minutely:0", "failed"),
            ("schedule.update", "minutely:0", "failed"),
            ("schedule.delete", "minutely:0", "failed"),
            ("schedule.pause", "minutely:0", "ok"),
            ("schedule.create", "minutely:0", "failed"),
            ("schedule.create", "mine", "ok"),
            ("schedule.update", "mine", "ok"),
            ("schedule.delete", "mine", "ok"),
        ]
    )


async def test_an_attempt_stopped_before_the_use_case_is_recorded_refused(
    backend: Subject,
) -> None:
    """refused records who tried what, through which channel, and why they were stopped."""
    viewer = Actor("bob", ("JobViewer",), channel="dashboard")
    await _admin(backend).refused(viewer, "queue.pause", "queue", "JobViewer may not act")
    [entry] = await _trail(backend)
    assert (entry.actor, entry.roles, entry.channel, entry.outcome, entry.detail) == (
        "bob",
        ("JobViewer",),
        "dashboard",
        "refused",
        "JobViewer may not act",
    )


async def test_queue_health_adds_up_workers_schedulers_and_pauses(backend: Subject) -> None:
    """Degraded without a live worker, or with schedules but no scheduler, or paused; ok
    otherwise."""
    admin = _admin(backend)
    now = backend.clock.now()
    assert (await admin.queue_health()).status is QueueStatus.DEGRADED
    worker = WorkerInfo("w1", "host", 1, 5, 0, now)
    await backend.presence.worker_seen(worker, timedelta(seconds=15))
    assert (await admin.queue_health()).status is QueueStatus.OK
    await admin.create_schedule(ALICE, Schedule(Cron("@hourly"), job="report", id="hourly"))
    assert (await admin.queue_health()).status is QueueStatus.DEGRADED
    await backend.presence.scheduler_seen(SchedulerInfo("s1", now), timedelta(seconds=15))
    health = await admin.queue_health()
    assert (health.status, health.workers, [s.id for s in health.schedulers]) == (
        QueueStatus.OK,
        (worker,),
        ["s1"],
    )
    await admin.set_queue_paused(ALICE, paused=True)
    assert (await admin.queue_health()).status is QueueStatus.DEGRADED


async def test_job_summaries_bring_pause_schedules_last_run_and_the_day(backend: Subject) -> None:
    """Each registered job's summary has its pause flag, schedules, last run and 24 h counts."""
    admin = _admin(backend)
    await admin.create_schedule(ALICE, Schedule(Cron("@hourly"), job="report", id="hourly"))
    await admin.set_job_paused(ALICE, "syncXero", paused=True)
    first = await admin.trigger(ALICE, "report")
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    await backend.queue.finish(claim, Succeeded())
    backend.clock.advance(1)
    last = await admin.trigger(ALICE, "report")
    summaries = {s.job.definition.name: s for s in await admin.job_summaries()}
    report, sync = summaries["report"], summaries["syncXero"]
    assert (report.paused, [s.schedule.id for s in report.schedules]) == (False, ["hourly"])
    assert report.last_run is not None
    assert (report.last_run.id, report.last_24h.succeeded) == (last, 1)
    assert (sync.paused, sync.schedules, sync.last_run) == (True, (), None)
    assert (await backend.history.get(first)).state is RunState.SUCCEEDED
    assert [s.job.definition.name for s in await admin.job_summaries(["syncXero"])] == ["syncXero"]
    with pytest.raises(JobNotFoundError):
        await admin.job_summaries(["nope"])


async def test_a_workers_active_count_is_current_not_its_last_heartbeat(
    backend: Subject,
) -> None:
    """Queue health counts each live worker's active runs from the leases: claims and
    settles show at once, whatever its last heartbeat said."""
    admin = _admin(backend)
    for worker_id in ("w1", "w2"):
        info = WorkerInfo(worker_id, "host", 1, 5, 0, backend.clock.now())
        await backend.presence.worker_seen(info, timedelta(seconds=15))
    await backend.queue.enqueue([EnqueueRequest("report") for _ in range(3)])
    first, _ = await backend.queue.claim("w1", 2, LEASE)
    await backend.queue.claim("w2", 1, LEASE)
    health = await admin.queue_health()
    assert [(w.id, w.active) for w in health.workers] == [("w1", 2), ("w2", 1)]
    assert health.snapshot.active_by_worker == {"w1": 2, "w2": 1}
    await backend.queue.finish(first, Succeeded())
    assert [w.active for w in (await admin.queue_health()).workers] == [1, 1]
