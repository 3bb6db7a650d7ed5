"""The real clock."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime


class SystemClock:
    """`Clock` on the system's time and asyncio's sleep."""

    def now(self) -> datetime:
        """The current UTC instant."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep (yields once for 0 or less)."""
        await asyncio.sleep(max(seconds, 0))

    async def sleep_until_set(self, seconds: float, event: asyncio.Event) -> None:
        """`EventClock.sleep_until_set`: one timer, no task."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
