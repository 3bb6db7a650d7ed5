"""Schema management: versioned migrations, applied once however many processes race, and a
clear error for a schema that is behind."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from hub_scheduler.adapters import backends
from hub_scheduler.adapters.postgres import (
    LATEST_VERSION,
    drop_schema,
    migrate,
    open_postgres_backend,
    schema,
    schema_version,
)
from hub_scheduler.domain.errors import (
    MIGRATE_COMMAND,
    BackendUnavailableError,
    SchemaVersionError,
    UnknownBackendError,
)
from hub_scheduler.domain.model import Attempt, AttemptOutcome, ErrorInfo
from hub_scheduler.domain.ports import (
    BackendConfig,
    EnqueueRequest,
    Failed,
    Migratable,
    Succeeded,
)
from hub_scheduler.domain.retry import RetryAfter
from hub_scheduler.testing import FakeClock

pytestmark = pytest.mark.postgres

ALL = [f"{m.version:04d}_{m.name}" for m in schema.migrations()]
LEASE = timedelta(seconds=30)


async def test_migrate_applies_every_migration_once(pg_url: str, pg_prefix: str) -> None:
    """The first migrate applies every shipped migration; the next one has nothing to do."""
    assert await schema_version(pg_url, pg_prefix) == 0
    assert await migrate(pg_url, pg_prefix) == ALL
    assert await migrate(pg_url, pg_prefix) == []
    assert await schema_version(pg_url, pg_prefix) == LATEST_VERSION == len(ALL)


async def test_concurrent_migrations_apply_once(pg_url: str, pg_prefix: str) -> None:
    """Three migrations racing on one schema: one applies everything, the others nothing."""
    results = await asyncio.gather(*(migrate(pg_url, pg_prefix) for _ in range(3)))
    assert sorted(results) == [[], [], ALL]
    assert await schema_version(pg_url, pg_prefix) == LATEST_VERSION


async def test_a_schema_never_migrated_names_the_command(pg_url: str, pg_prefix: str) -> None:
    """Opening a hub whose schema does not exist fails with the command to run; after it
    is run, the same backend works."""
    backend = open_postgres_backend(pg_url, BackendConfig(FakeClock(), pg_prefix))
    try:
        with pytest.raises(SchemaVersionError) as caught:
            await backend.ping()
        assert (caught.value.current, caught.value.required) == (0, LATEST_VERSION)
        assert MIGRATE_COMMAND in str(caught.value)
        assert f'"{pg_prefix}"' in str(caught.value)
        with pytest.raises(SchemaVersionError):
            await backend.queue.enqueue([EnqueueRequest("job")])
        await migrate(pg_url, pg_prefix)
        [answer] = await backend.queue.enqueue([EnqueueRequest("job")])
        assert answer.created
    finally:
        await backend.aclose()


async def test_a_schema_behind_names_both_versions(
    pg_url: str, pg_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema at version 1 when the code needs 2 is refused with both versions."""
    await migrate(pg_url, pg_prefix)
    monkeypatch.setattr(schema, "LATEST_VERSION", LATEST_VERSION + 1)
    backend = open_postgres_backend(pg_url, BackendConfig(FakeClock(), pg_prefix))
    try:
        with pytest.raises(SchemaVersionError, match=f"is at version {LATEST_VERSION};") as caught:
            await backend.ping()
        assert (caught.value.current, caught.value.required) == (
            LATEST_VERSION,
            LATEST_VERSION + 1,
        )
    finally:
        await backend.aclose()


async def test_prefixes_with_punctuation_are_separate_hubs(pg_url: str) -> None:
    """Prefixes with '-', '.' and ':' name schemas of their own: hubs sharing a database
    never see each other's runs."""
    first, second = (f"hub-{uuid.uuid4().hex[:6]}.{n}:x" for n in ("a", "b"))
    clock = FakeClock()
    opened = []
    try:
        for prefix in (first, second):
            await migrate(pg_url, prefix)
            opened.append(open_postgres_backend(pg_url, BackendConfig(clock, prefix)))
        one, two = opened
        await one.queue.enqueue([EnqueueRequest("job", {"hub": 1})])
        assert await two.queue.claim("w", 10, LEASE) == []
        [claim] = await one.queue.claim("w", 10, LEASE)
        assert claim.run.payload == {"hub": 1}
    finally:
        for backend in opened:
            await backend.aclose()
        for prefix in (first, second):
            await drop_schema(pg_url, prefix)


def test_a_prefix_too_long_for_a_schema_name_is_refused() -> None:
    """PostgreSQL would silently cut a 64-character schema name: it is refused instead."""
    with pytest.raises(ValueError, match="1-63"):
        open_postgres_backend("postgresql://localhost/x", BackendConfig(FakeClock(), "p" * 64))


async def test_migration_is_a_capability_of_the_backend(pg_url: str, pg_prefix: str) -> None:
    """A postgresql:// backend is `Migratable` and migrates its hub's schema; a Redis backend
    has nothing to migrate; an unknown scheme is refused (what ``db migrate`` relies on)."""
    config = BackendConfig(FakeClock(), pg_prefix)
    postgres = backends.open_backend(pg_url, config)
    try:
        assert isinstance(postgres, Migratable)
        assert await postgres.migrate() == ALL
    finally:
        await postgres.aclose()
    redis = backends.open_backend("redis://localhost:1/0", config)
    try:
        assert not isinstance(redis, Migratable)
    finally:
        await redis.aclose()
    with pytest.raises(UnknownBackendError):
        backends.open_backend("nosuch://x", config)
    assert backends.scheme_of(pg_url) in {"postgresql", "postgres"}


async def test_an_unreachable_database_is_unavailable() -> None:
    """Nothing listening: migrate and the first operation fail with BackendUnavailableError."""
    url = "postgresql://postgres@127.0.0.1:9/nothing"
    with pytest.raises(BackendUnavailableError):
        await migrate(url, "hub")
    backend = open_postgres_backend(url, BackendConfig(FakeClock(), "hub"))
    try:
        with pytest.raises(BackendUnavailableError):
            await backend.ping()
    finally:
        await backend.aclose()


async def test_runs_stored_before_the_attempt_log_still_read_and_log_from_then_on(
    pg_url: str, pg_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that failed on schema version 1 reads after the upgrade with its last error and
    no attempts; its next attempt is logged."""
    clock = FakeClock()
    boom = ErrorInfo("ValueError", "boom")
    config = BackendConfig(clock, pg_prefix)
    with monkeypatch.context() as old:
        first = schema.migrations()[:1]
        old.setattr(schema, "migrations", lambda: first)
        old.setattr(schema, "LATEST_VERSION", 1)
        assert await migrate(pg_url, pg_prefix) == ["0001_initial"]
        backend = open_postgres_backend(pg_url, config)
        try:
            [enqueued] = await backend.queue.enqueue([EnqueueRequest("job")])
            [claim] = await backend.queue.claim("w1", 1, LEASE)
            failed = Failed(boom, RetryAfter(timedelta(0), 2))
            await backend.queue.exchange("w1", [(claim, failed)], 0, LEASE)
        finally:
            await backend.aclose()
    later = ALL[1:]
    assert await migrate(pg_url, pg_prefix) == later
    backend = open_postgres_backend(pg_url, config)
    try:
        before = await backend.history.get(enqueued.run_id)
        assert (before.error, before.attempts, before.attempts_dropped) == (boom, (), 0)
        [claim] = await backend.queue.claim("w2", 1, LEASE)
        after = await backend.queue.finish(claim, Succeeded())
        assert after is not None
        assert after.attempts == (
            Attempt(2, clock.now(), clock.now(), "w2", AttemptOutcome.SUCCEEDED),
        )
    finally:
        await backend.aclose()
