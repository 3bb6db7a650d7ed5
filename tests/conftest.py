"""Shared fixtures: the real-Redis switch, per-test key prefixes, and removing a hub's keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub_scheduler import Hub
from hub_scheduler.adapters.redis.backend import RedisBackend

REDIS_URL_ENV = "HUB_SCHEDULER_TEST_REDIS_URL"


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test (or other user of a shared Redis) will use."""
    return f"hubtest:{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis to test against; skips when unset, so CI must set it."""
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        pytest.skip(f"{REDIS_URL_ENV} is not set; real-Redis tests skipped")
    return url


@pytest.fixture
async def real_redis(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the real Redis; a server that cannot be reached fails the test.

    Keys under this test's prefix are deleted afterwards (never FLUSHALL: the server
    may be shared).
    """
    client = aioredis.Redis.from_url(redis_url, decode_responses=False)
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        pytest.fail(f"{REDIS_URL_ENV}={redis_url} is set but Redis cannot be reached: {exc}")
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{key_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def redis_of(hub: Hub) -> aioredis.Redis:
    """The redis-py client under a hub on Redis (for tests that look at Redis itself)."""
    backend = hub.backend
    assert isinstance(backend, RedisBackend), f"{hub.url} is not a Redis backend"
    return backend.client


async def drop_keys(hub: Hub) -> None:
    """Delete every key of `hub`'s namespace (never FLUSHALL: the server may be shared)."""
    client = redis_of(hub)
    doomed = [key async for key in client.scan_iter(match=f"{{{hub.prefix}}}*")]
    if doomed:
        await client.delete(*doomed)
