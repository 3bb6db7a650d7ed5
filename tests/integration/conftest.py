"""Fixtures for the end-to-end tests that run on every kind of backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from hub_scheduler.adapters.redis.backend import RedisBackend, open_redis_backend
from hub_scheduler.domain.ports import BackendConfig
from hub_scheduler.hub import Hub
from hub_scheduler.testing import FakeClock
from tests.conftest import drop_keys, fresh_prefix
from tests.integration.redis_server import RedisServer

CLUSTER_URL_ENV = "HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL"
#: Where `redis_adapter`'s fake clock starts.
ADAPTER_START = datetime(2026, 6, 1, tzinfo=UTC)


@attrs.frozen
class Target:
    """A backend URL and a prefix no other test uses."""

    url: str
    prefix: str


@pytest.fixture(params=["memory", "redis", "postgres"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """Each kind of backend in turn, under a prefix of the test's own, removed afterwards.
    memory:// is private to a process: tests of several processes ask for `shared_target`."""
    async for found in _targets(request, request.param):
        yield found


@pytest.fixture(params=["redis", "postgres"])
async def shared_target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """A real Redis, then PostgreSQL: backends several processes share."""
    async for found in _targets(request, request.param):
        yield found


async def _targets(request: pytest.FixtureRequest, kind: str) -> AsyncIterator[Target]:
    prefix = fresh_prefix()
    if kind == "memory":
        yield Target("memory://", prefix)
        return
    if kind == "redis":
        url: str = request.getfixturevalue("redis_url")
        try:
            yield Target(url, prefix)
        finally:
            async with Hub(url, prefix=prefix) as hub:
                await drop_keys(hub)
        return
    pg_url = os.environ.get("HUB_SCHEDULER_TEST_POSTGRES_URL")
    if not pg_url:
        pytest.skip("HUB_SCHEDULER_TEST_POSTGRES_URL is not set; PostgreSQL tests skipped")
    from hub_scheduler.adapters.postgres import drop_schema, migrate  # noqa: PLC0415

    await migrate(pg_url, prefix)
    try:
        yield Target(pg_url, prefix)
    finally:
        await drop_schema(pg_url, prefix)


def adapter_clock(adapter: RedisBackend) -> FakeClock:
    """The `FakeClock` a `redis_adapter` (or an adapter opened on its config) runs on."""
    clock = adapter.config.clock
    assert isinstance(clock, FakeClock)
    return clock


@pytest.fixture(params=["memory", "redis", "cluster"])
async def redis_adapter(request: pytest.FixtureRequest) -> AsyncIterator[RedisBackend]:
    """The Redis adapter on fakeredis, on the real Redis of the test URL and on a real Redis
    Cluster (its scripts reach keys they do not declare, in the hub's one slot), under a
    prefix of its own (removed afterwards), on a `FakeClock` at `ADAPTER_START`."""
    if request.param == "memory":
        url = "memory://"
    elif request.param == "redis":
        url = str(request.getfixturevalue("redis_url"))
    else:
        url = os.environ.get(CLUSTER_URL_ENV, "")
        if not url:
            pytest.skip(f"{CLUSTER_URL_ENV} is not set; Redis Cluster tests skipped")
    opened = open_redis_backend(url, BackendConfig(FakeClock(ADAPTER_START), fresh_prefix()))
    try:
        yield opened
    finally:
        await drop_keys(opened)
        await opened.aclose()


@pytest.fixture
async def volatile_redis(redis_url: str, tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private redis-server without persistence, which the test may stop, freeze or
    restart (a restart empties it). The suite's real-Redis switch must be on."""
    del redis_url  # only the switch: this server is the test's own
    server = RedisServer(tmp_path, persistent=False)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
