"""taskiq-redis `RedisStreamBroker`: `taskiq worker apps.taskiq_app:broker --workers 1
--max-async-tasks C` (the CLI's defaults otherwise: a Receiver in a child process, INFO log).

`xread_count` is the worker's concurrency (its default 100 would prefetch 100 per worker), as
in `run.py`. taskiq has no batch enqueue: the drains are filled with `asyncio.gather` of
`kiq()` in chunks of 500, and the bulk column stays empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from taskiq_redis import RedisStreamBroker

from apps.common import QUEUE, TASK_NAME, AsyncCounter, Payload, concurrency, redis_url

FILL_CHUNK = 500

broker = RedisStreamBroker(redis_url(), queue_name=QUEUE, xread_count=concurrency())
counter = AsyncCounter()


@broker.task(task_name=TASK_NAME)
async def noop(payload: dict[str, Any]) -> None:
    await counter.record(payload)


class Client:
    bulk_method: str | None = None

    async def open(self) -> None:
        await broker.startup()

    async def close(self) -> None:
        await broker.shutdown()

    async def enqueue_one(self, payload: Payload) -> None:
        await noop.kiq(payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        raise NotImplementedError("taskiq has no batch enqueue")

    async def fill(self, payloads: Sequence[Payload]) -> None:
        for start in range(0, len(payloads), FILL_CHUNK):
            await asyncio.gather(*(noop.kiq(p) for p in payloads[start : start + FILL_CHUNK]))
