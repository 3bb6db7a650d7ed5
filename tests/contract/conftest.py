"""One suite, every backend.

A backend joins the suite by adding one entry to `BACKENDS`: the URL that `open_backend`
opens it by (every open of it reaches the same store, as separate processes would) and how to
remove what a test left behind. The suite opens every backend through `open_backend`, as an
application does, so a backend registered under a scheme (`register_backend`, or the
``hub_scheduler.backends`` entry point group) is tested with no change outside its own
package. The memory entry shows it: it registers a test-only scheme whose factory binds the
test's own fakeredis server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import attrs
import fakeredis
import pytest

from hub_scheduler.adapters.backends import open_backend, register_backend, unregister_backend
from hub_scheduler.adapters.redis.backend import open_redis_backend
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.model import JobDefinition
from hub_scheduler.domain.ports import (
    AuditLog,
    Backend,
    BackendConfig,
    DeadLetters,
    JobQueue,
    Presence,
    ResultStore,
    RunHistory,
    ScheduleStore,
    SharedStore,
    Signals,
    Stats,
)
from hub_scheduler.domain.schedule import Schedule, ScheduleTrigger
from hub_scheduler.testing import FakeClock
from tests.conftest import drop_keys, fresh_prefix

#: Every contract test starts at this instant on its fake clock.
START = datetime(2026, 6, 1, tzinfo=UTC)
PAYLOAD_LIMIT = 64 * 1024
#: The scheme the memory entry registers for the duration of one test.
MEMORY_TEST_SCHEME = "memory+contract"


async def _nothing(backend: Backend) -> None:
    del backend


@attrs.frozen
class BackendEntry:
    """How the suite reaches one kind of backend.

    Attributes:
        url: what `open_backend` opens; every open reaches the same store.
        cleanup: removes everything a backend opened on it stored under its prefix.
    """

    url: str
    cleanup: Callable[[Backend], Awaitable[None]] = _nothing


#: Gives a test its entry for one backend (and undoes whatever that took afterwards).
EntryFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[BackendEntry]]


@contextlib.asynccontextmanager
async def _memory(request: pytest.FixtureRequest) -> AsyncIterator[BackendEntry]:
    """``memory://``: the Redis adapter on one fakeredis server per test, registered under a
    test-only scheme so that every open of the URL reaches that server."""
    del request
    server = fakeredis.FakeServer()

    def factory(url: str, config: BackendConfig) -> Backend:
        del url
        return open_redis_backend("memory://", config, server=server)

    register_backend(MEMORY_TEST_SCHEME, factory)
    try:
        yield BackendEntry(f"{MEMORY_TEST_SCHEME}://")
    finally:
        unregister_backend(MEMORY_TEST_SCHEME)


@contextlib.asynccontextmanager
async def _redis(request: pytest.FixtureRequest) -> AsyncIterator[BackendEntry]:
    """The real Redis of ``HUB_SCHEDULER_TEST_REDIS_URL`` (skipped when unset)."""
    yield BackendEntry(str(request.getfixturevalue("redis_url")), drop_keys)


#: The Redis Cluster and Sentinel group of the ``cluster`` and ``sentinel`` entries (started by
#: ``.ci/redis-topologies``); unset: skipped.
CLUSTER_URL_ENV = "HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL"
SENTINEL_URL_ENV = "HUB_SCHEDULER_TEST_REDIS_SENTINEL_URL"


def _configured(variable: str, what: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set; {what} tests skipped")
    return url


@contextlib.asynccontextmanager
async def _cluster(request: pytest.FixtureRequest) -> AsyncIterator[BackendEntry]:
    """A real three-master Redis Cluster (``HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL``)."""
    del request
    yield BackendEntry(_configured(CLUSTER_URL_ENV, "Redis Cluster"), drop_keys)


@contextlib.asynccontextmanager
async def _sentinel(request: pytest.FixtureRequest) -> AsyncIterator[BackendEntry]:
    """The master of a real Sentinel group (``HUB_SCHEDULER_TEST_REDIS_SENTINEL_URL``)."""
    del request
    yield BackendEntry(_configured(SENTINEL_URL_ENV, "Redis Sentinel"), drop_keys)


#: The PostgreSQL database of the ``postgres`` entry; unset: skipped. Each test gets a schema
#: of its own (named from its prefix), dropped afterwards.
POSTGRES_URL_ENV = "HUB_SCHEDULER_TEST_POSTGRES_URL"
POSTGRES_TEST_SCHEME = "postgresql+contract"


@contextlib.asynccontextmanager
async def _postgres(request: pytest.FixtureRequest) -> AsyncIterator[BackendEntry]:
    """A real PostgreSQL (``HUB_SCHEDULER_TEST_POSTGRES_URL``, skipped when unset), registered
    under a test-only scheme whose backends migrate their schema on first use."""
    del request
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set; PostgreSQL tests skipped")
    # Imported here: psycopg is an optional extra, needed only when the entry is used.
    from hub_scheduler.adapters.postgres import drop_schema, open_postgres_backend  # noqa: PLC0415

    def factory(_: str, config: BackendConfig) -> Backend:
        return open_postgres_backend(url, config, auto_migrate=True)

    async def cleanup(backend: Backend) -> None:
        await drop_schema(url, backend.config.prefix)  # never the database: it may be shared

    register_backend(POSTGRES_TEST_SCHEME, factory)
    try:
        yield BackendEntry(f"{POSTGRES_TEST_SCHEME}://", cleanup)
    finally:
        unregister_backend(POSTGRES_TEST_SCHEME)


#: Backend name -> its entry. One line here is all a new backend needs.
BACKENDS: dict[str, EntryFactory] = {
    "memory": _memory,
    "redis": _redis,
    "cluster": _cluster,
    "sentinel": _sentinel,
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
    def audit(self) -> AuditLog:
        """The audit log."""
        return self.backend.audit

    @property
    def results(self) -> ResultStore:
        """Return values and progress."""
        return self.backend.results

    @property
    def presence(self) -> Presence:
        """Live workers and schedulers."""
        return self.backend.presence

    @property
    def signals(self) -> Signals:
        """The wake-ups; skips the test for a backend without them (its engines poll)."""
        if self.backend.signals is None:
            pytest.skip(f"{self.backend.url} has no signals")
        return self.backend.signals

    @property
    def shared(self) -> SharedStore:
        """The shared values; skips the test for a backend without them."""
        if self.backend.shared is None:
            pytest.skip(f"{self.backend.url} has no shared store")
        return self.backend.shared

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
        """A new process on the same store and namespace, with nothing declared yet."""
        other = open_backend(self.entry.url, self.backend.config)
        try:
            yield Subject(other, self.entry, self.clock)
        finally:
            await other.aclose()

    @contextlib.asynccontextmanager
    async def neighbour(self) -> AsyncIterator[Subject]:
        """Another hub on the same store under a prefix of its own (removed afterwards)."""
        config = attrs.evolve(self.backend.config, prefix=fresh_prefix())
        other = open_backend(self.entry.url, config)
        try:
            yield Subject(other, self.entry, self.clock)
        finally:
            await self.entry.cleanup(other)
            await other.aclose()


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    """Each registered backend, opened by its URL, with a fake clock at `START` and a
    namespace of its own (emptied afterwards). A configured service that cannot be reached
    fails the test."""
    async with BACKENDS[request.param](request) as entry:
        clock = FakeClock(START)
        config = BackendConfig(clock, fresh_prefix(), payload_limit=PAYLOAD_LIMIT)
        opened = open_backend(entry.url, config)
        try:
            await opened.ping()
        except BackendUnavailableError as exc:
            await opened.aclose()
            pytest.fail(f"{request.param} is configured for the tests but cannot be reached: {exc}")
        try:
            yield Subject(opened, entry, clock)
        finally:
            await entry.cleanup(opened)
            await opened.aclose()
