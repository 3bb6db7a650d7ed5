"""hub_scheduler: `hub-scheduler worker apps.hub_app:hub --url URL --concurrency C`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.common import TASK_NAME, AsyncCounter, Payload, redis_url
from hub_scheduler import Hub, Job

hub = Hub(redis_url(), prefix="compare")
counter = AsyncCounter()


@hub.job(TASK_NAME)
async def noop(ctx: Any) -> None:
    await counter.record(ctx.payload)


class Client:
    bulk_method: str | None = "await hub.enqueue_many([Job(name, payload), ...])"

    async def open(self) -> None:
        await hub.ping()

    async def close(self) -> None:
        await hub.aclose()

    async def enqueue_one(self, payload: Payload) -> None:
        await hub.enqueue(TASK_NAME, payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        await hub.enqueue_many([Job(TASK_NAME, payload) for payload in payloads])

    fill = enqueue_bulk
