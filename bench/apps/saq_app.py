"""SAQ: `saq apps.saq_app.settings --workers 1` (concurrency from BENCH_CONCURRENCY).

SAQ has no batch enqueue (`Queue.map` enqueues and then waits for the results): the drains
are filled with `asyncio.gather` of `enqueue()` in chunks of 500, the bulk column stays empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from saq import Queue

from apps.common import QUEUE, AsyncCounter, Payload, concurrency, redis_url

FILL_CHUNK = 500

queue = Queue.from_url(redis_url(), name=QUEUE)
counter = AsyncCounter()


async def noop(ctx: Any, **payload: Any) -> None:
    del ctx
    await counter.record(payload)


settings = {"queue": queue, "functions": [noop], "concurrency": concurrency()}


class Client:
    bulk_method: str | None = None

    async def open(self) -> None:
        await queue.connect()

    async def close(self) -> None:
        await queue.disconnect()

    async def enqueue_one(self, payload: Payload) -> None:
        await queue.enqueue("noop", **payload)

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        raise NotImplementedError("SAQ has no batch enqueue")

    async def fill(self, payloads: Sequence[Payload]) -> None:
        for start in range(0, len(payloads), FILL_CHUNK):
            chunk = payloads[start : start + FILL_CHUNK]
            await asyncio.gather(*(queue.enqueue("noop", **p) for p in chunk))
