"""Alert rules over every backend, evaluated by three replicas at once: each alert fires once
and resolves once, whichever replica sends it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import attrs

from hub_scheduler.domain.alerts import (
    AlertBook,
    AlertPolicy,
    NoticeKind,
    change_book,
    read_book,
)
from hub_scheduler.domain.model import ErrorInfo, JobDefinition, Priority
from hub_scheduler.domain.ports import EnqueueRequest, Failed, Succeeded, WorkerInfo
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.domain.schedule import Every, Schedule
from hub_scheduler.runtime.alerts import AlertMonitor
from hub_scheduler.runtime.scheduler import Scheduler
from hub_scheduler.testing import RecordingNotifier
from tests.contract.conftest import Subject

LEASE = timedelta(seconds=30)
BOOM = ErrorInfo("ValueError", "boom")
POLICY = AlertPolicy(failure_min_runs=10, dlq_growth=10, dead_per_job_per_hour=3)


async def _noop(ctx: object) -> None:
    del ctx


def _registry() -> Registry:
    registry = Registry()
    registry.add(JobDefinition("syncXero", priority=Priority.HIGH), _noop)
    registry.add(JobDefinition("report"), _noop)
    return registry


@attrs.define
class Replicas:
    """Three alert monitors, each on its own open of one store, as three schedulers are."""

    monitors: list[AlertMonitor]
    channels: list[RecordingNotifier]

    async def evaluate(self) -> None:
        """Every replica evaluates once, all at the same time (racing for the book)."""
        await asyncio.gather(*(monitor.evaluate() for monitor in self.monitors))

    def sent(self) -> Counter[tuple[str, NoticeKind]]:
        """How often each (alert key, firing or resolved) was sent, over all replicas."""
        return Counter((n.alert.key, n.kind) for channel in self.channels for n in channel.notices)

    def keys(self, kind: NoticeKind) -> list[str]:
        """The alert keys sent with `kind`, in order, over all replicas."""
        return sorted(
            n.alert.key for channel in self.channels for n in channel.notices if n.kind is kind
        )


@contextlib.asynccontextmanager
async def _replicas(backend: Subject) -> AsyncIterator[Replicas]:
    registry = _registry()
    async with backend.restarted() as second, backend.restarted() as third:
        channels = [RecordingNotifier() for _ in range(3)]
        monitors = [
            AlertMonitor(subject.backend, registry, backend.clock, channel, POLICY, id=f"r{i}")
            for i, (subject, channel) in enumerate(
                zip([backend, second, third], channels, strict=True)
            )
        ]
        yield Replicas(monitors, channels)


async def _finish(backend: Subject, job: str, *, ok: int = 0, dead: int = 0) -> None:
    requests = [EnqueueRequest(job, {"i": i}) for i in range(ok + dead)]
    await backend.queue.enqueue(requests)
    claims = await backend.queue.claim("w1", len(requests), LEASE)
    for i, claim in enumerate(claims):
        outcome = Succeeded() if i < ok else Failed(BOOM, GiveUp(claim.run.attempt))
        await backend.queue.finish(claim, outcome)


async def _worker_alive(backend: Subject) -> None:
    info = WorkerInfo("w1", "host", 1, 1, 0, backend.clock.now())
    await backend.presence.worker_seen(info, timedelta(minutes=10))


async def test_queue_paused_and_no_worker_fire_once_and_resolve_once(backend: Subject) -> None:
    """A queue paused longer than `paused_for` alerts once from three replicas; resuming it
    resolves that once; runs then waiting with no live worker alert once after
    `no_worker_for`, and a worker coming resolves it once."""
    async with _replicas(backend) as replicas:
        await backend.queue.pause()
        await backend.queue.enqueue([EnqueueRequest("report")])
        await replicas.evaluate()
        backend.clock.advance(timedelta(minutes=10))
        await replicas.evaluate()
        assert replicas.sent() == Counter()  # pending: not paused for 15 minutes yet
        backend.clock.advance(timedelta(minutes=6))
        await replicas.evaluate()
        await replicas.evaluate()
        assert replicas.sent() == Counter({("queue_paused:queue", NoticeKind.FIRING): 1})

        await backend.queue.resume()
        await replicas.evaluate()
        backend.clock.advance(timedelta(minutes=2))
        await replicas.evaluate()
        await _worker_alive(backend)
        await replicas.evaluate()
        await replicas.evaluate()
        assert replicas.sent() == Counter(
            {
                ("queue_paused:queue", NoticeKind.FIRING): 1,
                ("queue_paused:queue", NoticeKind.RESOLVED): 1,
                ("no_worker:queue", NoticeKind.FIRING): 1,
                ("no_worker:queue", NoticeKind.RESOLVED): 1,
            }
        )


async def test_failure_rate_dlq_growth_and_dead_runs(backend: Subject) -> None:
    """Over 10 % of a job's attempts failing in the hour alerts once for that job, ten dead
    letters in the hour alert once for the queue, each dead run alerts once (at most 3 per
    job per hour, the rest held back) with a link to the run, and both rate alerts resolve
    once the hour has passed."""
    await _worker_alive(backend)
    async with _replicas(backend) as replicas:
        await replicas.evaluate()  # the book starts: older dead letters are not alerted
        await _finish(backend, "report", ok=50, dead=2)  # 4 %: no alert
        await _finish(backend, "syncXero", ok=2, dead=10)  # 83 %
        await replicas.evaluate()
        await replicas.evaluate()
        assert replicas.keys(NoticeKind.FIRING) == [
            "dlq_growth:dlq",
            "failure_rate:syncXero",
            "run_dead:report",
            "run_dead:report",
            "run_dead:syncXero",
            "run_dead:syncXero",
            "run_dead:syncXero",
        ]
        dead = [n for c in replicas.channels for n in c.notices if n.alert.condition.event]
        run_ids = {n.alert.condition.details["run_id"] for n in dead}
        assert len(run_ids) == 5
        assert {n.alert.condition.link for n in dead} == {f"/admin/runs/{r}" for r in run_ids}
        assert {n.alert.condition.priority for n in dead} == {Priority.HIGH, Priority.NORMAL}

        await _worker_alive(backend)
        backend.clock.advance(timedelta(hours=3))
        await _worker_alive(backend)
        await replicas.evaluate()
        await replicas.evaluate()
        assert replicas.keys(NoticeKind.RESOLVED) == ["dlq_growth:dlq", "failure_rate:syncXero"]


async def test_schedule_overdue_fires_once_and_resolves_when_fired(backend: Subject) -> None:
    """A schedule whose slot passed its grace unfired alerts once from three replicas (as
    critical, with the job's priority), and resolves once a scheduler fired it."""
    await _worker_alive(backend)
    schedule = Schedule(Every(timedelta(minutes=5)), job="syncXero", id="syncXero:0")
    await backend.schedules.create(schedule, backend.clock.now())
    async with _replicas(backend) as replicas:
        backend.clock.advance(timedelta(minutes=20))
        await _worker_alive(backend)
        await replicas.evaluate()
        await replicas.evaluate()
        [notice] = [n for c in replicas.channels for n in c.notices]
        assert (notice.alert.key, notice.kind, notice.alert.severity.value) == (
            "schedule_overdue:syncXero:0",
            NoticeKind.FIRING,
            "critical",
        )
        assert notice.alert.condition.priority is Priority.HIGH
        scheduler = Scheduler(backend.schedules, backend.presence, _registry(), backend.clock)
        await scheduler.tick()
        await replicas.evaluate()
        assert replicas.sent()[("schedule_overdue:syncXero:0", NoticeKind.RESOLVED)] == 1


async def test_a_muted_rule_records_without_sending(backend: Subject) -> None:
    """While a rule is muted its alert fires in the book but no notice goes out, and its
    resolution is quiet too."""
    now = backend.clock.now()

    def mute(book: AlertBook) -> tuple[AlertBook, None]:
        return book.muted("no_worker", now + timedelta(hours=1), now), None

    async with _replicas(backend) as replicas:
        await change_book(backend.backend.shared, now, mute)
        await backend.queue.enqueue([EnqueueRequest("report")])
        await replicas.evaluate()
        backend.clock.advance(timedelta(minutes=2))
        await replicas.evaluate()
        _, book = await read_book(backend.backend.shared, backend.clock.now())
        assert (book.active["no_worker:queue"].status.value,
                book.active["no_worker:queue"].suppressed) == ("firing", "muted")  # fmt: skip
        await _worker_alive(backend)
        await replicas.evaluate()
        assert replicas.sent() == Counter()
        _, book = await read_book(backend.backend.shared, backend.clock.now())
        assert [(a.key, a.status.value) for a in book.recent] == [("no_worker:queue", "resolved")]
