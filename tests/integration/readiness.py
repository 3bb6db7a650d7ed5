"""Waiting for scheduler processes to be up before an experiment's clock starts."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime

from hub_scheduler import Hub

#: How long processes get to start (import, connect, sync) on a loaded machine.
START_WITHIN = 120.0


async def schedulers_ready(hub: Hub, count: int, *, besides: Collection[str] = ()) -> set[str]:
    """The ids of `count` live schedulers (not among `besides`), once they heartbeat: a
    scheduler reports itself after its first pass over the due schedules."""
    async with asyncio.timeout(START_WITHIN):
        while True:
            seen = await hub.presence.schedulers(datetime.now(UTC))
            live = {s.id for s in seen} - set(besides)
            if len(live) >= count:
                return live
            await asyncio.sleep(0.1)  # polling processes still starting: no event to await
