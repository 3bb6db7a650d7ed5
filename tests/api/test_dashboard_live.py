"""The dashboard's live stream: a change event when the queue changes, none while it rests."""

from __future__ import annotations

import asyncio

import pytest

from hub_scheduler import Hub, JobContext
from hub_scheduler.entrypoints.api.dashboard import live


async def _noop(ctx: JobContext) -> None:
    del ctx


async def test_an_enqueue_is_one_change_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the opening comment the stream is quiet (keep-alive comments only) until a run
    is enqueued; then it says change, once."""
    monkeypatch.setattr(live, "LOOK_EVERY", 0.01)
    monkeypatch.setattr(live, "KEEP_ALIVE", 0.03)
    async with Hub("memory://") as hub:
        hub.job("report")(_noop)
        stream = live.changes(hub)
        opening = await anext(stream)
        assert (opening.comment, opening.retry) == ("live", live.RETRY_MS)
        quiet = await asyncio.wait_for(anext(stream), 5)
        assert (quiet.event, quiet.comment) == (None, "idle")
        await hub.enqueue("report")
        event = await asyncio.wait_for(anext(stream), 5)
        while event.comment == "idle":  # one may have been due just before the enqueue
            event = await asyncio.wait_for(anext(stream), 5)
        assert (event.event, event.data) == ("change", "queue")
        after = await asyncio.wait_for(anext(stream), 5)
        assert after.comment == "idle"
        await stream.aclose()


async def test_the_stream_needs_a_session() -> None:
    """Without a session cookie the stream is refused like any dashboard page."""
    from tests.api.conftest import build_app, client_for  # noqa: PLC0415

    async with Hub("memory://") as hub, client_for(build_app(hub)) as client:
        response = await client.get("/admin/events", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, "/admin/login")
