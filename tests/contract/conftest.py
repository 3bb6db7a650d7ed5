"""One suite, every backend. A backend joins the suite by adding one entry to `BACKENDS`:
how to open it (the same store on every call, as separate processes would see it) and how to
remove what a test left behind."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import attrs
import fakeredis
import pytest
import redis.asyncio as aioredis

from hub_scheduler.adapters.backends import open_backend
from hub_scheduler.adapters.redis.backend import open_redis_backend
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.model import JobDefinition
from hub_scheduler.domain.ports import (
    Backend,
    BackendConfig,
    DeadLetters,
    JobQueue,
    Presence,
    RunHistory,
    ScheduleStore,
    Stats,
)
from hub_scheduler.domain.schedule import Schedule, ScheduleTrigger
from hub_scheduler.testing import FakeClock

#: Every contract test starts at this instant on its fake clock.
START = datetime(2026, 6, 1, tzinfo=UTC)
PAYLOAD_LIMIT = 64 * 1024


class BackendEntry(Protocol):
    """How the suite opens one kind of backend."""

    def open(self, config: BackendConfig) -> Backend:
        """A backend on this entry's store (every call: the same store)."""
        ...

    async def cleanup(self, config: BackendConfig) -> None:
        """Remove everything stored under `config.prefix`."""
        ...


@attrs.define
class MemoryEntry:
    """``memory://``: the Redis adapter on one fakeredis server per test."""

    server: fakeredis.FakeServer = attrs.field(factory=fakeredis.FakeServer)

    def open(self, config: BackendConfig) -> Backend:
        """A backend on this test's fake server."""
        return open_redis_backend("memory://", config, server=self.server)

    async def cleanup(self, config: BackendConfig) -> None:
        """Nothing: the server goes with the test."""


@attrs.define
class RedisEntry:
    """A real Redis (``HUB_SCHEDULER_TEST_REDIS_URL``), keys under a prefix of the test's."""

    url: str

    def open(self, config: BackendConfig) -> Backend:
        """A backend on the real server."""
        return open_backend(self.url, config)

    async def cleanup(self, config: BackendConfig) -> None:
        """Delete the test's keys (never FLUSHALL: the server may be shared)."""
        async with aioredis.Redis.from_url(self.url) as client:
            doomed = [k async for k in client.scan_iter(match=f"{{{config.prefix}}}*")]
            if doomed:
                await client.delete(*doomed)


#: The PostgreSQL database of the ``postgres`` entry; unset: skipped. Each test gets a schema
#: of its own (named from its prefix), dropped afterwards.
POSTGRES_URL_ENV = "HUB_SCHEDULER_TEST_POSTGRES_URL"


@attrs.define
class PostgresEntry:
    """A real PostgreSQL (``HUB_SCHEDULER_TEST_POSTGRES_URL``), one schema per test, migrated
    when first opened."""

    url: str

    def open(self, config: BackendConfig) -> Backend:
        """A backend on the database; the test's schema is migrated on first use."""
        # Imported here: psycopg is an optional extra, needed only when the entry is used.
        from hub_scheduler.adapters.postgres import open_postgres_backend  # noqa: PLC0415

        return open_postgres_backend(self.url, config, auto_migrate=True)

    async def cleanup(self, config: BackendConfig) -> None:
        """Drop the test's schema (never the database: it may be shared)."""
        from hub_scheduler.adapters.postgres import drop_schema  # noqa: PLC0415

        await drop_schema(self.url, config.prefix)


def _memory(request: pytest.FixtureRequest) -> BackendEntry:
    del request
    return MemoryEntry()


def _redis(request: pytest.FixtureRequest) -> BackendEntry:
    return RedisEntry(str(request.getfixturevalue("redis_url")))


def _postgres(request: pytest.FixtureRequest) -> BackendEntry:
    del request
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set; PostgreSQL tests skipped")
    return PostgresEntry(url)


#: Backend name -> how to get its entry (may skip when the service is not configured).
BACKENDS: dict[str, Callable[[pytest.FixtureRequest], BackendEntry]] = {
    "memory": _memory,
    "redis": _redis,
    "postgres": _postgres,
}


@attrs.define
class Subject:
    """One backend as one process of an application sees it: its ports, a fake clock, and the
    jobs it declares in code."""

    backend: Backend
    entry: BackendEntry
    clock: FakeClock
    declared: list[Schedule] = attrs.field(factory=list)

    @property
    def queue(self) -> JobQueue:
        """The queue."""
        return self.backend.queue

    @property
    def dead(self) -> DeadLetters:
        """The dead letters."""
        return self.backend.dead_letters

    @property
    def history(self) -> RunHistory:
        """The run history."""
        return self.backend.history

    @property
    def schedules(self) -> ScheduleStore:
        """The schedule store."""
        return self.backend.schedules

    @property
    def stats(self) -> Stats:
        """The statistics."""
        return self.backend.stats

    @property
    def presence(self) -> Presence:
        """Live workers and schedulers."""
        return self.backend.presence

    @property
    def payload_limit(self) -> int:
        """The largest payload this backend was opened to accept."""
        return self.backend.config.payload_limit

    def declare(self, job: str, schedules: Sequence[ScheduleTrigger]) -> None:
        """Declare `job` in code with these schedules (bound as ``"<job>:<index>"``)."""
        self.declared.extend(JobDefinition(job, schedules=tuple(schedules)).schedules)

    async def sync(self) -> None:
        """Upsert the schedules declared so far, as a process does when it starts."""
        await self.schedules.sync_declared(self.declared, self.clock.now())

    @contextlib.asynccontextmanager
    async def restarted(self) -> AsyncIterator[Subject]:
        """A new process on the same store, with nothing declared yet."""
        other = self.entry.open(self.backend.config)
        try:
            yield Subject(other, self.entry, self.clock)
        finally:
            await other.aclose()


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    """Each registered backend with a fake clock at `START` and a namespace of its own
    (emptied afterwards). A configured service that cannot be reached fails the test."""
    entry = BACKENDS[request.param](request)
    clock = FakeClock(START)
    config = BackendConfig(clock, f"hubtest-{uuid.uuid4().hex[:12]}", payload_limit=PAYLOAD_LIMIT)
    opened = entry.open(config)
    try:
        await opened.ping()
    except BackendUnavailableError as exc:
        await opened.aclose()
        pytest.fail(f"{request.param} is configured for the tests but cannot be reached: {exc}")
    try:
        yield Subject(opened, entry, clock)
    finally:
        await entry.cleanup(config)
        await opened.aclose()
