"""The waits the engines share: sleeping on the clock until woken, and following a signal
subscription that may be lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import attrs

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.domain.ports import Clock, EventClock

logger = logging.getLogger("hub_scheduler.runtime")

#: After a lost subscription, the first wait before subscribing again (seconds); it doubles
#: up to `RESUBSCRIBE_MAX` while the store stays away. Polling covers the gap.
RESUBSCRIBE_FIRST = 0.5
RESUBSCRIBE_MAX = 5.0


@attrs.define(eq=False)
class Waker:
    """A sleep on the clock that `wake` ends early.

    A wake that comes while nobody sleeps is kept: the next `sleep` returns at once. The flag
    is cleared when a sleep ends, so one wake ends one sleep.
    """

    clock: Clock
    event: asyncio.Event = attrs.field(factory=asyncio.Event)
    _direct: EventClock | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self._direct = self.clock if isinstance(self.clock, EventClock) else None

    def wake(self) -> None:
        """End the current sleep (or the next one)."""
        self.event.set()

    def clear(self) -> None:
        """Forget a pending wake."""
        self.event.clear()

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` on the clock, or until woken; yields once for 0 or less."""
        if seconds <= 0 or self.event.is_set():
            await asyncio.sleep(0)
            self.event.clear()
            return
        if self._direct is not None:
            try:
                await self._direct.sleep_until_set(seconds, self.event)
            finally:
                self.event.clear()
            return
        timer = asyncio.create_task(self.clock.sleep(seconds))
        woken = asyncio.create_task(self.event.wait())
        try:
            await asyncio.wait({timer, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            woken.cancel()
            self.event.clear()


async def follow(
    subscribe: Callable[[], AsyncIterator[bool]],
    on_signal: Callable[[], None],
    stop: asyncio.Event,
    *,
    what: str,
    subscribed: asyncio.Event | None = None,
) -> None:
    """Call `on_signal` for every signal of `subscribe()` until `stop` is set, subscribing
    again (with backoff) whenever the subscription is lost; set `subscribed` once it is
    first subscribed. Never raises but on cancel."""
    backoff = RESUBSCRIBE_FIRST
    while not stop.is_set():
        try:
            async for signalled in subscribe():
                if stop.is_set():
                    return
                if subscribed is not None:
                    subscribed.set()
                backoff = RESUBSCRIBE_FIRST
                if signalled:
                    on_signal()
        except HubSchedulerError as exc:
            logger.debug("%s channel lost (%s); subscribing again", what, exc)
        except Exception:  # polling still finds the work; keep trying to get signals back
            logger.exception("%s channel failed; subscribing again", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, RESUBSCRIBE_MAX)
