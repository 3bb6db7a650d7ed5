"""One suite, every backend: ``memory`` (fakeredis + lupa) and ``redis`` (a real server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.connection import open_redis
from hub_scheduler.adapters.redis.keys import Keys
from hub_scheduler.adapters.redis.store import RedisStore
from hub_scheduler.testing import FakeClock


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[RedisStore]:
    """A store on each backend, with a fake clock and a key prefix of its own."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else "memory://"
    client = open_redis(url)
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        pytest.fail(f"{url} is set for the tests but cannot be reached: {exc}")
    store = RedisStore(client, FakeClock(), Keys(key_prefix.replace("hubtest:", "hubtest-")))
    try:
        yield store
    finally:
        keys = [key async for key in client.scan_iter(match=store.keys.base + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
