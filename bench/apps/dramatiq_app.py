"""Dramatiq on its `RedisBroker`: `dramatiq apps.dramatiq_app --processes 1 --threads C`.

Threads, not asyncio: the job body is a synchronous redis-py INCR (one connection pool per
worker process). Dramatiq has no batch enqueue (a `group` sends its messages one by one): the
drains are filled with `send()` in a loop, the bulk column stays empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from redis import Redis

from apps.common import DONE_KEY, LATENCY_KEY, QUEUE, Payload, latency_ms, redis_url

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)
_redis = Redis.from_url(redis_url())


@dramatiq.actor(queue_name=QUEUE, actor_name="noop")
def noop(payload: dict[str, Any]) -> None:
    lat = latency_ms(payload)
    _redis.incr(DONE_KEY)
    if lat is not None:
        _redis.rpush(LATENCY_KEY, f"{lat:.4f}")


class Client:
    bulk_method: str | None = None

    async def open(self) -> None:
        broker.client.ping()

    async def close(self) -> None:
        broker.close()

    async def enqueue_one(self, payload: Payload) -> None:
        noop.send(payload)  # synchronous: the client process has nothing else to do

    async def enqueue_bulk(self, payloads: Sequence[Payload]) -> None:
        raise NotImplementedError("Dramatiq has no batch enqueue")

    async def fill(self, payloads: Sequence[Payload]) -> None:
        for payload in payloads:
            noop.send(payload)
