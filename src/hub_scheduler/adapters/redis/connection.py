"""Open a Redis client for a URL: ``redis://``/``rediss://`` or ``memory://`` (fakeredis)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub_scheduler.domain.errors import BackendUnavailableError

if TYPE_CHECKING:
    import fakeredis

MEMORY_SCHEME = "memory://"

#: Below redis-py 8's default 5 s socket timeout would kill blocking reads; we never block
#: longer than `BLOCK_SECONDS`, and give reads this much more room on top.
SOCKET_TIMEOUT = 10.0
BLOCK_SECONDS = 2.0


def is_memory(url: str) -> bool:
    """True for the in-memory backend."""
    return url.startswith(MEMORY_SCHEME)


def open_redis(url: str, *, server: fakeredis.FakeServer | None = None) -> aioredis.Redis:
    """A client for `url`. For ``memory://`` pass the hub's `server` (one per hub), or get a
    fresh one. Real connections get timeouts, so a dead Redis is noticed."""
    if is_memory(url):
        # Imported here: fakeredis and its Lua runtime cost a worker on real Redis ~10 MB.
        import fakeredis  # noqa: PLC0415
        from fakeredis.aioredis import FakeAsyncRedisConnection  # noqa: PLC0415

        kwargs: dict[str, Any] = {
            "connection_class": FakeAsyncRedisConnection,
            "server": server or fakeredis.FakeServer(),
        }
        pool = aioredis.ConnectionPool(**kwargs)
        return aioredis.Redis(connection_pool=pool)
    return aioredis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        retry_on_timeout=False,
    )


async def listen(client: aioredis.Redis, channel: str) -> AsyncIterator[bool]:
    """Yield True for each message on `channel`, and False after each quiet `BLOCK_SECONDS`
    (so a reader can check whether to stop). Every read blocks less than redis-py's socket
    timeout; a lost connection raises `BackendUnavailableError` (the caller resubscribes)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        try:
            await pubsub.subscribe(channel)
            while True:
                message = await pubsub.get_message(timeout=BLOCK_SECONDS)
                yield message is not None
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError("listen", type(exc).__name__) from exc
    finally:
        with contextlib.suppress(RedisError, OSError, RuntimeError):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
