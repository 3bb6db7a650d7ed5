"""Enqueue inside the application's own transaction: the run exists iff it commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from hub_scheduler import Hub, RunState
from hub_scheduler.adapters.postgres import PostgresBackend, migrate
from hub_scheduler.adapters.postgres.store import channel_name
from hub_scheduler.domain.errors import RunNotFoundError, TransactionalEnqueueUnsupportedError
from hub_scheduler.domain.ports import TransactionalEnqueue
from hub_scheduler.domain.registry import Job, JobContext
from hub_scheduler.testing import FakeClock

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)


class RolledBackError(Exception):
    """Raised to roll a transaction back."""


@pytest.fixture
async def hub(pg_url: str, pg_prefix: str) -> AsyncIterator[Hub]:
    """A hub on a migrated schema of its own, with one job, on a fake clock."""
    await migrate(pg_url, pg_prefix)
    async with Hub(pg_url, prefix=pg_prefix, clock=FakeClock()) as hub:

        @hub.job("invoice")
        async def invoice(ctx: JobContext) -> None:
            del ctx

        yield hub


@pytest.fixture
async def app_connection(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    """The application's own connection to the same database."""
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        await conn.execute("CREATE TEMPORARY TABLE orders (id int)")
        await conn.commit()
        yield conn


async def test_a_run_enqueued_in_a_committed_transaction_exists(
    hub: Hub, app_connection: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    """Enqueued inside the app's transaction: invisible until commit, then queued and claimable."""
    assert isinstance(hub.queue, TransactionalEnqueue)
    async with app_connection.transaction():
        await app_connection.execute("INSERT INTO orders VALUES (7)")
        run_id = await hub.enqueue("invoice", {"order": 7}, connection=app_connection)
        with pytest.raises(RunNotFoundError):
            await hub.history.get(run_id)  # another connection: not committed yet
    run = await hub.history.get(run_id)
    assert (run.state, run.payload) == (RunState.QUEUED, {"order": 7})
    [claim] = await hub.queue.claim("w1", 10, LEASE)
    assert claim.run.id == run_id


async def test_a_run_enqueued_in_a_rolled_back_transaction_never_exists(
    hub: Hub, app_connection: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    """The app's transaction rolls back: its runs are gone with it, idempotency keys too."""
    enqueued: list[str] = []

    async def enqueue_then_fail() -> None:
        async with app_connection.transaction():
            enqueued.extend(
                await hub.enqueue_many(
                    [Job("invoice", {"i": 1}), Job("invoice", idempotency_key="order-8")],
                    connection=app_connection,
                )
            )
            raise RolledBackError

    with pytest.raises(RolledBackError):
        await enqueue_then_fail()
    first, second = enqueued
    for run_id in (first, second):
        with pytest.raises(RunNotFoundError):
            await hub.history.get(run_id)
    assert (await hub.queue.snapshot()).waiting == 0
    [again] = await hub.enqueue_many([Job("invoice", idempotency_key="order-8")])
    assert again != second  # the rolled-back key was never recorded


async def test_a_transactional_enqueue_wakes_workers_at_its_commit(
    hub: Hub,
    app_connection: psycopg.AsyncConnection[tuple[object, ...]],
    pg_url: str,
    pg_prefix: str,
) -> None:
    """Enqueued in the app's transaction right after another enqueue: no wake-up while the
    transaction is open (nothing to claim yet), one with its commit (none lost to debouncing)."""
    backend = hub.backend
    assert isinstance(backend, PostgresBackend)
    backend.store.wakes.window = 0.5  # the transactional enqueue falls within it
    wake = sql.Identifier(channel_name(pg_prefix, "wake"))
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as listener:
        await listener.execute(sql.SQL("LISTEN {}").format(wake))
        await hub.enqueue("invoice")
        assert len([n async for n in listener.notifies(timeout=5, stop_after=1)]) == 1
        async with app_connection.transaction():
            await hub.enqueue("invoice", {"order": 9}, connection=app_connection)
            # The transaction outlasts the window: a debounced wake-up would arrive now.
            early = [n async for n in listener.notifies(timeout=0.75)]
        late = [n async for n in listener.notifies(timeout=5, stop_after=1)]
    assert (len(early), len(late)) == (0, 1)


async def test_an_idempotency_key_holds_inside_the_transaction(
    hub: Hub, app_connection: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    """The same key twice in one transaction, then once outside: one run."""
    async with app_connection.transaction():
        first = await hub.enqueue("invoice", idempotency_key="k", connection=app_connection)
        second = await hub.enqueue("invoice", idempotency_key="k", connection=app_connection)
    third = await hub.enqueue("invoice", idempotency_key="k")
    assert first == second == third
    assert len(await hub.queue.claim("w1", 10, LEASE)) == 1


async def test_a_connection_of_another_kind_is_refused(hub: Hub) -> None:
    """A connection that is not a psycopg AsyncConnection is a TypeError, nothing enqueued."""
    with pytest.raises(TypeError, match=r"psycopg\.AsyncConnection"):
        await hub.enqueue("invoice", connection=object())
    assert (await hub.queue.snapshot()).waiting == 0


async def test_a_backend_without_transactions_refuses_a_connection() -> None:
    """On memory:// (Redis), enqueue(connection=...) raises a clear error naming the backend."""
    async with Hub("memory://") as hub:

        @hub.job("invoice")
        async def invoice(ctx: JobContext) -> None:
            del ctx

        with pytest.raises(TransactionalEnqueueUnsupportedError, match="memory://"):
            await hub.enqueue("invoice", connection=object())
        assert (await hub.queue.snapshot()).waiting == 0
