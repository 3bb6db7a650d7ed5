"""What is particular to storing in PostgreSQL: NUL characters, the repairs that close the
races between pausing a job and enqueueing it, and history filtered by state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import LiteralString

import psycopg
import pytest
from psycopg import sql

from hub_scheduler.adapters.postgres import PostgresBackend, migrate, open_postgres_backend
from hub_scheduler.domain.errors import PayloadError
from hub_scheduler.domain.model import ErrorInfo, RunState
from hub_scheduler.domain.ports import (
    AuditEntry,
    BackendConfig,
    EnqueueRequest,
    Failed,
    Succeeded,
)
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.domain.schedule import Every, Schedule, SlotDecision, SlotOutcome
from hub_scheduler.testing import FakeClock

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=30)
START = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
async def backend(pg_url: str, pg_prefix: str) -> AsyncIterator[PostgresBackend]:
    """A backend on a migrated schema of the test's own, on a fake clock."""
    await migrate(pg_url, pg_prefix)
    opened = open_postgres_backend(pg_url, BackendConfig(FakeClock(START), pg_prefix))
    try:
        yield opened
    finally:
        await opened.aclose()


async def _sql(url: str, prefix: str, statement: LiteralString, *params: object) -> None:
    """Run `statement` (``{}`` is the hub's schema) behind the adapter's back."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL(statement).format(sql.Identifier(prefix)), params)


async def test_a_payload_with_a_nul_character_is_refused(backend: PostgresBackend) -> None:
    """jsonb cannot hold U+0000: such a payload is a PayloadError and nothing is stored."""
    with pytest.raises(PayloadError, match="NUL"):
        await backend.queue.enqueue([EnqueueRequest("job", {"text": "a\x00b"})])
    assert (await backend.queue.snapshot()).waiting == 0


async def test_an_error_with_a_nul_character_is_stored_readably(backend: PostgresBackend) -> None:
    """A failure whose message holds U+0000 still settles; the character becomes U+FFFD."""
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("job")])
    [claim] = await backend.queue.claim("w1", 1, LEASE)
    error = ErrorInfo("ValueError", "bad\x00byte", "trace\x00back")
    run = await backend.queue.finish(claim, Failed(error, GiveUp(1)))
    assert run is not None
    assert (run.id, run.state, run.error) == (
        enqueued.run_id,
        RunState.DEAD,
        ErrorInfo("ValueError", "bad\ufffdbyte", "trace\ufffdback"),
    )


async def test_audit_details_keep_what_json_cannot_say_as_text(backend: PostgresBackend) -> None:
    """Before/after values that are not JSON are stored as their text (as on Redis)."""
    entry = AuditEntry(
        id="a1", at=START, actor="ada", roles=("SystemAdmin",), action="pause", target="job",
        outcome="ok", before={"when": START, "note": "x\x00y"}, after={"paused": True},
    )  # fmt: skip
    await backend.audit.record(entry)
    [stored] = (await backend.audit.list()).items
    assert (stored.before, stored.after) == (
        {"when": str(START), "note": "x\ufffdy"},
        {"paused": True},
    )


async def test_a_run_parked_after_its_job_resumed_is_freed_by_the_reaper(
    backend: PostgresBackend, pg_url: str, pg_prefix: str
) -> None:
    """A resume racing a promotion can leave a run parked with its job running: the next
    reap unparks it, in its place."""
    queue = backend.queue
    await queue.pause("report")
    await queue.enqueue([EnqueueRequest("report", {"i": 1}), EnqueueRequest("email", {"i": 2})])
    await _sql(pg_url, pg_prefix, "DELETE FROM {}.paused_jobs")  # resumed, runs left parked
    assert [c.run.payload["i"] for c in await queue.claim("w1", 10, LEASE)] == [2]
    assert await queue.reap(1, LEASE) == ([], [])
    assert [c.run.payload["i"] for c in await queue.claim("w1", 10, LEASE)] == [1]


async def test_a_run_not_parked_when_its_job_was_paused_is_not_claimed(
    backend: PostgresBackend, pg_url: str, pg_prefix: str
) -> None:
    """A pause racing an enqueue can leave a run of the paused job unparked: claims skip it
    until the job resumes."""
    queue = backend.queue
    await queue.enqueue([EnqueueRequest("report", {"i": 1}), EnqueueRequest("email", {"i": 2})])
    await _sql(pg_url, pg_prefix, "INSERT INTO {}.paused_jobs VALUES ('report')")
    assert [c.run.payload["i"] for c in await queue.claim("w1", 10, LEASE)] == [2]
    await queue.resume("report")
    assert [c.run.payload["i"] for c in await queue.claim("w1", 10, LEASE)] == [1]


async def test_history_by_state_reads_a_bounded_window(backend: PostgresBackend) -> None:
    """Filtering by state reads at most max_scan_pages pages per call: a short page with a
    cursor means more may follow, and following the cursors finds every match."""
    queue, history = backend.queue, backend.history
    history.max_scan_pages = 2
    await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(3)])
    [claim] = await queue.claim("w1", 1, LEASE)  # the oldest
    await queue.finish(claim, Succeeded())
    await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(3, 10)])
    succeeded = frozenset({RunState.SUCCEEDED})
    first = await history.list(states=succeeded, limit=2)  # scans the 4 newest runs
    assert (first.items, first.next_cursor is not None) == ((), True)
    found: list[str] = []
    cursor = first.next_cursor
    while cursor is not None:
        page = await history.list(states=succeeded, cursor=cursor, limit=2)
        found.extend(r.id for r in page.items)
        cursor = page.next_cursor
    assert found == [claim.run.id]


async def test_dead_runs_are_an_index_range_not_a_scan(backend: PostgresBackend) -> None:
    """Dead (or cancelled) runs alone are read from their index: the one dead run under many
    newer ones is in the first page, however few pages a scan may read."""
    queue, history = backend.queue, backend.history
    history.max_scan_pages = 1
    await queue.enqueue([EnqueueRequest("job", {"i": 0})])
    [claim] = await queue.claim("w1", 1, LEASE)
    await queue.finish(claim, Failed(ErrorInfo("E", "x"), GiveUp(1)))
    await queue.enqueue([EnqueueRequest("job", {"i": i}) for i in range(1, 200)])
    page = await history.list(states=frozenset({RunState.DEAD}), limit=5)
    assert ([r.id for r in page.items], page.next_cursor) == ([claim.run.id], None)
    assert (await history.list(states=frozenset({RunState.DEAD}), job="other")).items == ()


async def test_clean_also_drops_what_expired_on_the_clock(
    backend: PostgresBackend, pg_url: str, pg_prefix: str
) -> None:
    """Cleaning forgets idempotency keys past their window (a new run then takes the key)."""
    queue, clock = backend.queue, backend.config.clock
    assert isinstance(clock, FakeClock)
    request = EnqueueRequest("job", idempotency_key="k", idempotency_window=timedelta(hours=1))
    [first] = await queue.enqueue([request])
    clock.advance(timedelta(hours=2))
    assert await backend.history.clean(clock.now() - timedelta(days=90)) == 0
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute(
            sql.SQL("SELECT count(*) FROM {}.idempotency").format(sql.Identifier(pg_prefix))
        )
        assert await cur.fetchone() == (0,)
    [second] = await queue.enqueue([request])
    assert (second.created, second.run_id != first.run_id) == (True, True)


async def test_concurrent_fires_of_one_slot_record_it_once(
    backend: PostgresBackend, pg_url: str, pg_prefix: str
) -> None:
    """Five schedulers on five connections fire the same slot from the same state at once:
    the row lock and version check let exactly one enqueue and ledger it."""
    state = await backend.schedules.create(
        Schedule(Every(timedelta(minutes=1)), job="tick", id="s"), START
    )
    assert state.next_fire is not None
    slot = state.next_fire
    others = [
        open_postgres_backend(pg_url, BackendConfig(FakeClock(START), pg_prefix)) for _ in range(5)
    ]
    try:
        results = await asyncio.gather(
            *(
                other.schedules.fire(
                    state,
                    [SlotDecision(slot, SlotOutcome.ENQUEUED)],
                    [EnqueueRequest("tick", schedule_id="s", slot=slot)],
                    slot + timedelta(minutes=1),
                    slot,
                )
                for other in others
            )
        )
    finally:
        for other in others:
            await other.aclose()
    fired = [r for r in results if r is not None]
    assert [len(r) for r in fired] == [1]
    [record] = (await backend.schedules.slots("s")).items
    assert (record.slot, record.run_id) == (slot, fired[0][0].run_id)
    assert (await backend.schedules.get("s")).runs == 1
    assert (await backend.queue.snapshot()).waiting == 1


async def test_the_slot_ledger_pages_newest_first(backend: PostgresBackend) -> None:
    """Seven fired slots come back newest first, three at a time, each once."""
    state = await backend.schedules.create(
        Schedule(Every(timedelta(minutes=1)), job="tick", id="s"), START
    )
    slots = []
    for _ in range(7):
        assert state.next_fire is not None
        slot = state.next_fire
        decision = SlotDecision(slot, SlotOutcome.ENQUEUED)
        request = EnqueueRequest("tick", schedule_id="s", slot=slot)
        fired = await backend.schedules.fire(
            state, [decision], [request], slot + timedelta(minutes=1), slot
        )
        assert fired is not None
        slots.append(slot)
        state = await backend.schedules.get("s")
    seen: list[datetime] = []
    cursor = None
    while True:
        page = await backend.schedules.slots("s", cursor, limit=3)
        seen.extend(r.slot for r in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == slots[::-1]


async def test_audit_pages_through_entries_of_one_instant(backend: PostgresBackend) -> None:
    """Five entries recorded at the same instant page newest first (as recorded), two a page."""
    for i in range(5):
        await backend.audit.record(
            AuditEntry(id=f"e{i}", at=START, actor="ada", roles=(), action="x", target="t",
                       outcome="ok")
        )  # fmt: skip
    seen: list[str] = []
    cursor = None
    while True:
        page = await backend.audit.list(cursor, limit=2)
        seen.extend(e.id for e in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["e4", "e3", "e2", "e1", "e0"]
