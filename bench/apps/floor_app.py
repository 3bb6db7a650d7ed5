"""The floor: a plain redis-py LPUSH / BRPOP queue, no library, no guarantees.

Worker: `python -m apps.floor_app` with C asyncio tasks, each `BRPOP compare:floor` → JSON
decode → the job (the same INCR as everyone). Enqueue: one `LPUSH` per job; bulk: `LPUSH` of
1,000 jobs per call. No ack, no retry, no history: what one Python process with redis-py costs
at the least for a job that INCRs a counter, to read the others' numbers against.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Sequence

from redis.asyncio import Redis

from apps.common import AsyncCounter, Payload, concurrency, redis_url

LIST_KEY = "compare:floor"
BULK_CHUNK = 1_000
POP_TIMEOUT_S = 1  # below redis-py's socket timeout; an idle loop re-blocks every second


class Client:
    bulk_method: str | None = f"LPUSH of {BULK_CHUNK:,} jobs per call"

    def __init__(self) -> None:
        self.redis = Redis.from_url(redis_url())

    async def open(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue_one(self, payload: Payload) -> None:
        await self.redis.lpush(LIST_KEY, json.dumps(payload))

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        for start in range(0, len(payloads), BULK_CHUNK):
            chunk = payloads[start : start + BULK_CHUNK]
            await self.redis.lpush(LIST_KEY, *(json.dumps(p) for p in chunk))

    fill = enqueue_bulk


async def consume(redis: Redis, counter: AsyncCounter, stop: asyncio.Event) -> None:
    while not stop.is_set():
        item = await redis.brpop([LIST_KEY], timeout=POP_TIMEOUT_S)
        if item is not None:
            await counter.record(json.loads(item[1]))


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    redis = Redis.from_url(redis_url(), max_connections=concurrency() + 1)
    counter = AsyncCounter()
    try:
        await asyncio.gather(*(consume(redis, counter, stop) for _ in range(concurrency())))
    finally:
        with contextlib.suppress(Exception):
            await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
