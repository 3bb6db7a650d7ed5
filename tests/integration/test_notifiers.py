"""Alerts on dead letters: the log record and the webhook."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from hub_scheduler.adapters.notifiers import LoggingNotifier, WebhookNotifier
from hub_scheduler.domain.model import ErrorInfo, Run, RunState

DEAD = Run(
    id="r1",
    job="syncXero",
    state=RunState.DEAD,
    enqueued_at=datetime(2026, 6, 1, tzinfo=UTC),
    attempt=4,
    payload={"secret": "do-not-send"},
    error=ErrorInfo("ValueError", "Xero said no"),
)


class Receiver:
    """A one-route HTTP server on loopback that answers with the given statuses in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, object]] = []
        self.got_one = asyncio.Event()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        self.bodies.append(json.loads(await reader.readexactly(length)))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        if status < 500:
            self.got_one.set()


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[Receiver]:
    """A receiver failing with the statuses given by the test's parameter."""
    target = Receiver(list(getattr(request, "param", [])))
    server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
    target.port = server.sockets[0].getsockname()[1]
    async with server:
        yield target


async def test_logging_notifier_logs_one_error(caplog: pytest.LogCaptureFixture) -> None:
    """The default notifier writes one ERROR naming the run, job, attempts and error."""
    with caplog.at_level(logging.ERROR, logger="hub_scheduler.alerts"):
        await LoggingNotifier().run_dead(DEAD)
    assert [r.getMessage() for r in caplog.records] == [
        "run r1 of job syncXero is dead after 4 attempts: ValueError: Xero said no"
    ]


@pytest.mark.parametrize("receiver", [[503, 502]], indirect=True)
async def test_webhook_retries_until_delivered_without_payload(receiver: Receiver) -> None:
    """The webhook POSTs JSON, retries 5xx answers, and never sends the job's payload."""
    notifier = WebhookNotifier(f"http://127.0.0.1:{receiver.port}/hook", backoff=0.01)
    await notifier.run_dead(DEAD)  # returns at once; delivery runs in the background
    await asyncio.wait_for(receiver.got_one.wait(), 5)
    await notifier.drain()
    assert len(receiver.bodies) == 3
    assert receiver.bodies[-1] == {
        "event": "run.dead",
        "run_id": "r1",
        "job": "syncXero",
        "attempts": 4,
        "enqueued_at": "2026-06-01T00:00:00+00:00",
        "finished_at": None,
        "error": {"type": "ValueError", "message": "Xero said no"},
    }


async def test_webhook_gives_up_quietly_when_nobody_listens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unreachable webhook is retried, then logged; the caller never sees an exception."""
    notifier = WebhookNotifier("http://127.0.0.1:1/hook", attempts=2, backoff=0.01, timeout=0.5)
    with caplog.at_level(logging.ERROR, logger="hub_scheduler.alerts"):
        await notifier.run_dead(DEAD)
        await notifier.drain()
    assert [r.getMessage() for r in caplog.records] == ["webhook for dead run r1 not delivered"]
