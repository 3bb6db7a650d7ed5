"""Live updates for the dashboard: a server-sent-events stream that says "something changed".

The pages already refresh every 10 s while visible; this makes them refresh sooner. The
stream follows the backend's wake-up signal (an enqueue, a retry, a cancel, a resumed queue)
and, since finishing runs send none, compares the queue's counts every `LOOK_EVERY` seconds;
each difference is one ``change`` event, after which `static/live.js` asks htmx to refresh
what is on the page. A comment every `KEEP_ALIVE` seconds keeps proxies from closing an idle
stream. The browser's EventSource reconnects by itself when the stream drops, and the 10 s
polling goes on meanwhile: the stream only ever makes a page fresher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from litestar import Controller, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.entrypoints.api.dashboard.site import ViewerDep
from hub_scheduler.entrypoints.api.dependencies import HubDep
from hub_scheduler.hub import Hub

#: Seconds between two looks at the queue's counts (at most; a wake-up looks at once).
LOOK_EVERY = 2.0
#: Seconds of silence after which a comment is sent.
KEEP_ALIVE = 15.0
#: Milliseconds the browser waits before reconnecting a dropped stream.
RETRY_MS = 3000


async def changes(hub: Hub) -> AsyncGenerator[ServerSentEventMessage, None]:
    """``change`` events whenever the queue's counts differ from the last look, or the
    backend signals a wake-up; a comment now and then while nothing changes."""
    woken = asyncio.Event()

    async def follow() -> None:
        signals = hub.backend.signals
        if signals is None:
            return
        with contextlib.suppress(HubSchedulerError):
            async for _ in signals.wakeups():
                woken.set()

    listener = asyncio.create_task(follow(), name="hub-dashboard-live")
    last: tuple[object, ...] | None = None
    quiet = 0.0
    try:
        yield ServerSentEventMessage(comment="live", retry=RETRY_MS)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), LOOK_EVERY)
            signalled = woken.is_set()
            woken.clear()
            try:
                snap = await hub.queue.snapshot()
            except HubSchedulerError:
                continue  # the store is away: the page's own polling says so
            counts = (snap.waiting, snap.delayed, snap.active, snap.dead, snap.paused,
                      snap.succeeded, snap.failed, tuple(sorted(snap.paused_jobs)))  # fmt: skip
            if last is not None and (counts != last or signalled):
                quiet = 0.0
                yield ServerSentEventMessage(data="queue", event="change")
            else:
                quiet += LOOK_EVERY
                if quiet >= KEEP_ALIVE:
                    quiet = 0.0
                    yield ServerSentEventMessage(comment="idle")
            last = counts
    finally:
        listener.cancel()


class Live(Controller):
    """``/events``: the stream, for any signed-in role."""

    @get("/events")
    async def events(self, hub: HubDep, viewer: ViewerDep) -> ServerSentEvent:
        """What changed, as it changes (see the module)."""
        del viewer
        return ServerSentEvent(changes(hub))
