"""`Presence` on Redis: one JSON self-description per worker or scheduler, expiring with its
ttl, and a sorted set of ids per kind scored by when each report expires."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import attrs
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.codec import from_ms, to_ms, to_text
from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.ports import SchedulerInfo, WorkerInfo

T = TypeVar("T")
_MS = timedelta(milliseconds=1)


def _ms(value: timedelta | None) -> float | None:
    return None if value is None else value / _MS


def _delta(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(milliseconds=value)


def _worker(data: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=data["id"],
        host=data["host"],
        pid=data["pid"],
        concurrency=data["concurrency"],
        active=data["active"],
        seen_at=from_ms(data["seen"]),
    )


def _scheduler(data: dict[str, Any]) -> SchedulerInfo:
    return SchedulerInfo(
        id=data["id"],
        seen_at=from_ms(data["seen"]),
        lateness_p50=_delta(data["p50_ms"]),
        lateness_p99=_delta(data["p99_ms"]),
    )


@attrs.define
class RedisPresence:
    """Live workers and schedulers of one hub."""

    store: RedisStore

    async def _seen(self, index: str, key: str, data: dict[str, Any], ttl: timedelta) -> None:
        """Store `data` (with its ``id`` and ``seen`` ms) under `key`, live for `ttl`."""
        seen = int(data["seen"])
        try:
            async with self.store.client.pipeline(transaction=True) as pipe:
                pipe.set(key, json.dumps({"v": 1, **data}), px=max(1, ttl // _MS))
                pipe.zadd(index, {data["id"]: seen + ttl // _MS})
                pipe.zremrangebyscore(index, "-inf", f"({seen}")
                await pipe.execute()
        except RedisError as exc:
            raise BackendUnavailableError("presence", type(exc).__name__) from exc

    async def _live(
        self, index: str, key_of: Callable[[str], str], now: datetime,
        decode: Callable[[dict[str, Any]], T],
    ) -> builtins.list[T]:  # fmt: skip
        try:
            ids = cast(
                "builtins.list[bytes]",
                await self.store.client.zrangebyscore(index, f"({to_ms(now)}", "+inf"),
            )
            if not ids:
                return []
            raw = await self.store.client.mget([key_of(to_text(i)) for i in sorted(ids)])
        except RedisError as exc:
            raise BackendUnavailableError("presence", type(exc).__name__) from exc
        return [decode(json.loads(text)) for text in raw if text]

    async def worker_seen(self, info: WorkerInfo, ttl: timedelta) -> None:
        """See `Presence.worker_seen`."""
        keys = self.store.keys
        data = {"id": info.id, "host": info.host, "pid": info.pid,
                "concurrency": info.concurrency, "active": info.active,
                "seen": to_ms(info.seen_at)}  # fmt: skip
        await self._seen(keys.workers, keys.worker(info.id), data, ttl)

    async def worker_stopped(self, worker_id: str) -> None:
        """See `Presence.worker_stopped`."""
        try:
            async with self.store.client.pipeline(transaction=True) as pipe:
                pipe.delete(self.store.keys.worker(worker_id))
                pipe.zrem(self.store.keys.workers, worker_id)
                await pipe.execute()
        except RedisError as exc:
            raise BackendUnavailableError("presence", type(exc).__name__) from exc

    async def workers(self, now: datetime) -> Sequence[WorkerInfo]:
        """See `Presence.workers`."""
        keys = self.store.keys
        return await self._live(keys.workers, keys.worker, now, _worker)

    async def scheduler_seen(self, info: SchedulerInfo, ttl: timedelta) -> None:
        """See `Presence.scheduler_seen`."""
        keys = self.store.keys
        data = {"id": info.id, "seen": to_ms(info.seen_at),
                "p50_ms": _ms(info.lateness_p50), "p99_ms": _ms(info.lateness_p99)}  # fmt: skip
        await self._seen(keys.schedulers, keys.scheduler(info.id), data, ttl)

    async def schedulers(self, now: datetime) -> Sequence[SchedulerInfo]:
        """See `Presence.schedulers`."""
        keys = self.store.keys
        return await self._live(keys.schedulers, keys.scheduler, now, _scheduler)
