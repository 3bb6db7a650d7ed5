"""What every Python system's job does, and the environment the apps are built from."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

DONE_KEY = "compare:done"
LATENCY_KEY = "compare:lat"
QUEUE = "compare"
TASK_NAME = "compare.noop"

Payload = dict[str, Any]


def redis_url() -> str:
    return os.environ["BENCH_REDIS_URL"]


def concurrency() -> int:
    return int(os.environ.get("BENCH_CONCURRENCY", "5"))


def latency_ms(payload: Payload) -> float | None:
    """How long ago the job was enqueued (its payload's `t`), or None for an untimed job."""
    enqueued = payload.get("t")
    return (time.time() - enqueued) * 1000.0 if isinstance(enqueued, float) else None


class AsyncCounter:
    """The job's body for asyncio workers: one INCR (plus the latency, when timed)."""

    def __init__(self) -> None:
        self._redis: Any = None

    async def record(self, payload: Payload) -> None:
        lat = latency_ms(payload)
        if self._redis is None:  # created in the worker's own event loop
            from redis.asyncio import Redis  # noqa: PLC0415

            self._redis = Redis.from_url(redis_url())
        await self._redis.incr(DONE_KEY)
        if lat is not None:
            await self._redis.rpush(LATENCY_KEY, f"{lat:.4f}")


class Client(Protocol):
    """What `compare_client.py` drives. `enqueue_bulk` is None when the library has no batch
    API; `fill` is the fastest way to pre-enqueue a drain (untimed)."""

    bulk_method: str | None

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def enqueue_one(self, payload: Payload) -> None: ...
    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None: ...
    async def fill(self, payloads: Sequence[Payload]) -> None: ...
