"""Fixtures for the end-to-end tests that run on every kind of backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import attrs
import pytest

from hub_scheduler.hub import Hub
from tests.conftest import drop_keys, fresh_prefix


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
