"""Shared fixtures: the real-Redis switch, per-test key prefixes, and removing a test's keys.

A test on the real Redis writes only under a prefix of its own and removes its keys with
`drop_keys` (or through the `redis_hub` fixture), never with FLUSHALL: the server may be
shared.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub_scheduler import Hub
from hub_scheduler.adapters.redis.backend import RedisBackend
from hub_scheduler.adapters.redis.connection import RedisClient
from hub_scheduler.domain.ports import Backend, BackendVitals

REDIS_URL_ENV = "HUB_SCHEDULER_TEST_REDIS_URL"


def fresh_prefix() -> str:
    """A hub prefix no other test (or other user of a shared Redis) will use."""
    return f"hubtest-{uuid.uuid4().hex[:12]}"


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


async def _reachable(client: RedisClient, url: str) -> None:
    """Fail the test (not skip it) when the configured Redis does not answer."""
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        pytest.fail(f"{REDIS_URL_ENV}={url} is set but Redis cannot be reached: {exc}")


async def drop_matching(client: RedisClient, pattern: str) -> None:
    """Delete the keys matching `pattern` (a SCAN glob). The one place tests delete keys."""
    doomed = [key async for key in client.scan_iter(match=pattern, count=1000)]
    if doomed:
        await client.delete(*doomed)


def redis_of(target: Hub | Backend) -> RedisClient:
    """The redis-py client under a hub or backend on Redis (for tests that look at Redis)."""
    backend = target.backend if isinstance(target, Hub) else target
    assert isinstance(backend, RedisBackend), f"{backend.url} is not a Redis backend"
    return backend.client


async def drop_keys(target: Hub | Backend) -> None:
    """Delete every key of the namespace of a hub or backend on Redis (its prefix)."""
    backend = target.backend if isinstance(target, Hub) else target
    await drop_matching(redis_of(backend), f"{{{backend.config.prefix}}}*")


@pytest.fixture
async def real_redis(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the real Redis; a server that cannot be reached fails the test.

    Keys under this test's prefix are deleted afterwards.
    """
    client = aioredis.Redis.from_url(redis_url, decode_responses=False)
    try:
        await _reachable(client, redis_url)
        yield client
        await drop_matching(client, f"{key_prefix}*")
    finally:
        await client.aclose()


@pytest.fixture
async def redis_hub(redis_url: str) -> AsyncIterator[Hub]:
    """A hub on the real Redis under a fresh prefix; its keys are dropped afterwards, even
    when the test fails."""
    async with Hub(redis_url, prefix=fresh_prefix()) as hub:
        await _reachable(redis_of(hub), redis_url)
        try:
            yield hub
        finally:
            await drop_keys(hub)


@attrs.define
class ReportingVitals:
    """A backend whose store reports `reading` as its vitals (every port is `inner`'s): the
    numbers a Redis under pressure would give, without filling one."""

    inner: Backend
    reading: BackendVitals

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def vitals(self) -> BackendVitals:
        """See `HasVitals.vitals`."""
        return self.reading


#: What an evicting Redis at 95 % of its maxmemory reports.
EVICTING = BackendVitals(
    kind="redis", used_memory=950, max_memory=1000, eviction_policy="allkeys-lru",
    connected_clients=3, ops_per_second=12.5, evicted_keys=7,
)  # fmt: skip
