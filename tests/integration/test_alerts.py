"""Alerts end to end on a hub: the backend going away and coming back, apprise channels in
test mode and through apprise itself, routing by severity and job priority, secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import apprise
import attrs
import pytest
from apprise.decorators import notify

from hub_scheduler import Hub
from hub_scheduler.adapters.notifiers import AppriseNotifier
from hub_scheduler.domain.alerts import AlertPolicy, NoticeKind
from hub_scheduler.domain.errors import BackendUnavailableError, ValidationError
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Backend, EnqueueRequest, Failed, Succeeded, WorkerInfo
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.runtime.alerts import AlertMonitor
from hub_scheduler.testing import FakeClock, RecordingNotifier

TWILIO = (
    "twilio://AC0123456789abcdef0123456789abcdef:s3cr3ttoken0123456789abcdef01234"
    "@15551234567/15557654321"
)
MAIL = "mailto://alerts:mailpass99@example.com"
SECRETS = ("s3cr3ttoken0123456789abcdef01234", "mailpass99", "AC0123456789abcdef")


@attrs.define
class Unplugged:
    """A backend whose store can be cut off: every port raises `BackendUnavailableError`
    while `down` is set (as a lost Redis connection does)."""

    inner: Backend
    down: bool = False

    def __getattr__(self, name: str) -> Any:
        if self.down and name not in {"url", "config"}:
            raise BackendUnavailableError(name, "ConnectionError")
        return getattr(self.inner, name)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    """A memory hub on a fake clock with one high-priority and one normal job."""
    hub = Hub("memory://", clock=FakeClock())

    @hub.job("syncXero", priority="high")
    async def sync(ctx: object) -> None:
        del ctx

    @hub.job("report")
    async def report(ctx: object) -> None:
        del ctx

    yield hub
    await hub.aclose()


def _replicas(
    hub: Hub, count: int = 3
) -> tuple[list[AlertMonitor], list[Unplugged], list[RecordingNotifier]]:
    plugs = [Unplugged(hub.backend) for _ in range(count)]
    channels = [RecordingNotifier() for _ in range(count)]
    monitors = [
        hub.alert_monitor(channel, id=f"scheduler-{i}", backend=cast("Backend", plug))
        for i, (plug, channel) in enumerate(zip(plugs, channels, strict=True))
    ]
    return monitors, plugs, channels


async def _seen(hub: Hub, *ids: str) -> None:
    from hub_scheduler.domain.ports import SchedulerInfo  # noqa: PLC0415

    for scheduler_id in ids:
        info = SchedulerInfo(scheduler_id, hub.clock.now())
        await hub.presence.scheduler_seen(info, timedelta(minutes=10))
    worker = WorkerInfo("w1", "host", 1, 1, 0, hub.clock.now())
    await hub.presence.worker_seen(worker, timedelta(minutes=10))


async def test_backend_unreachable_is_told_once_by_the_first_replica(hub: Hub) -> None:
    """Three schedulers losing the store: after `unreachable_for` only the one first in line
    (smallest id of the schedulers last seen live) sends the alert, once; when the store
    answers again it sends one resolution."""
    clock = cast("FakeClock", hub.clock)
    monitors, plugs, channels = _replicas(hub)
    await _seen(hub, *(m.id for m in monitors))
    await asyncio.gather(*(m.evaluate() for m in monitors))
    for plug in plugs:
        plug.down = True
    for _ in range(3):
        await asyncio.gather(*(m.evaluate() for m in monitors))
        clock.advance(timedelta(seconds=20))
    for plug in plugs:
        plug.down = False
    await asyncio.gather(*(m.evaluate() for m in monitors))
    await asyncio.gather(*(m.evaluate() for m in monitors))
    sent = [[(n.alert.key, n.kind) for n in c.notices] for c in channels]
    assert sent == [
        [
            ("backend_unreachable:backend", NoticeKind.FIRING),
            ("backend_unreachable:backend", NoticeKind.RESOLVED),
        ],
        [],
        [],
    ]
    assert "ConnectionError" in channels[0].notices[0].alert.condition.summary


async def test_an_apprise_channel_in_test_mode_gets_the_seeds_four_alerts(hub: Hub) -> None:
    """The seed's monitoring alerts — queue paused, failure rate over 10 %, dead-letter
    queue growth, Redis connection lost — reach an apprise mail channel in test mode; the SMS
    channel tagged critical,high-priority gets only the critical ones not about a
    normal-priority job; no URL secret appears in any delivery."""
    clock = cast("FakeClock", hub.clock)
    channel = AppriseNotifier.from_urls(f"{MAIL} critical,high-priority={TWILIO}", test_mode=True)
    policy = AlertPolicy(paused_for=timedelta(minutes=1), dead_per_job_per_hour=1)
    plug = Unplugged(hub.backend)
    monitor = hub.alert_monitor(channel, policy=policy, backend=cast("Backend", plug), id="s0")
    await _seen(hub, "s0")
    await monitor.evaluate()
    requests = [EnqueueRequest("report", {"i": i}) for i in range(12)]
    await hub.queue.enqueue(requests)
    for i, claim in enumerate(await hub.queue.claim("w1", 12, timedelta(seconds=30))):
        boom = Failed(ErrorInfo("ValueError", "boom"), GiveUp(1))
        await hub.queue.finish(claim, Succeeded() if i == 0 else boom)
    await hub.queue.pause()
    await monitor.evaluate()
    clock.advance(timedelta(minutes=2))
    await _seen(hub, "s0")
    await monitor.evaluate()
    plug.down = True
    await monitor.evaluate()
    clock.advance(timedelta(minutes=1))
    await monitor.evaluate()

    mail = [d.title for d in channel.sent if d.channel == "mailto://***"]
    assert mail == [
        "[CRITICAL] run_dead: report",
        "[WARNING] failure_rate: report",
        "[WARNING] dlq_growth: dlq",
        "[WARNING] queue_paused: queue",
        "[CRITICAL] backend_unreachable: backend",
    ]
    sms = [d.title for d in channel.sent if d.channel != "mailto://***"]
    assert sms == ["[CRITICAL] backend_unreachable: backend"]
    assert {d.channel for d in channel.sent} == {
        "mailto://***",
        "critical,high-priority=twilio://***",
    }
    text = repr(channel.sent) + repr(channel.channels)
    assert not [secret for secret in SECRETS if secret in text]


received: list[tuple[str, str, str]] = []


@notify(on="hubtest")  # type: ignore[untyped-decorator,no-untyped-call]
def _hubtest(body: str, title: str, notify_type: str, *args: Any, **kwargs: Any) -> bool:
    """An apprise service of the test's own: apprise's real pipeline, delivered to a list."""
    del args, kwargs
    received.append((title, body, str(notify_type)))
    return True


async def test_apprise_delivers_through_its_own_pipeline(hub: Hub) -> None:
    """Outside test mode a notice goes through apprise (here to a service the test
    registers), with its title, body and type; a resolution is a success."""
    del hub
    received.clear()
    channel = AppriseNotifier.from_urls("hubtest://alerts")
    clock = FakeClock()
    other = Hub("memory://", clock=clock)
    monitor = other.alert_monitor(channel, policy=AlertPolicy(no_worker_for=timedelta(seconds=1)))
    await other.queue.enqueue([EnqueueRequest("x")])
    await monitor.evaluate()
    clock.advance(timedelta(seconds=2))
    await monitor.evaluate()
    await other.presence.worker_seen(WorkerInfo("w", "h", 1, 1, 0, clock.now()), timedelta(hours=1))
    await monitor.evaluate()
    await channel.drain()
    await other.aclose()
    assert [(t, kind) for t, _, kind in received] == [
        ("[CRITICAL] no_worker: queue", "failure"),
        ("[RESOLVED] no_worker: queue", "success"),
    ]
    assert "1 runs wait and no worker is live" in received[0][1]


def test_a_url_apprise_refuses_is_named_by_its_scheme_only() -> None:
    """A URL apprise does not accept is a `ValidationError` that shows no secret of it."""
    with pytest.raises(ValidationError) as raised:
        AppriseNotifier.from_urls("nosuchservice://user:hunter22@host")
    assert "hunter22" not in str(raised.value)
    assert "nosuchservice://***" in str(raised.value)


def test_apprise_logs_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    """What apprise logs about a channel never shows the channel's secrets."""
    AppriseNotifier.from_urls(MAIL)
    with caplog.at_level(logging.WARNING, logger="apprise"):
        logging.getLogger("apprise").warning("failed to send to %s", MAIL)
    assert "mailpass99" not in caplog.text
    assert apprise.__version__
