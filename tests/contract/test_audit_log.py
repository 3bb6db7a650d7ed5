"""The audit log on every backend: entries kept whole, listed newest first, paged, and kept
for the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import InvalidCursorError
from hub_scheduler.domain.ports import AuditEntry
from tests.contract.conftest import Subject


def _entry(backend: Subject, n: int) -> AuditEntry:
    return AuditEntry(
        id=f"e{n}",
        at=backend.clock.now(),
        actor="alice",
        roles=("SystemAdmin",),
        action="job.trigger",
        target="syncXero",
        outcome="ok",
    )


async def test_an_entry_reads_back_whole(backend: Subject) -> None:
    """Every field of an entry (who, what, through what, before and after) survives the store."""
    entry = AuditEntry(
        id="e1",
        at=backend.clock.now(),
        actor="alice",
        roles=("SystemAdmin", "JobViewer"),
        action="schedule.update",
        target="syncXero:0",
        outcome="failed",
        request_id="req-7",
        client="10.0.0.8",
        before={"trigger": "at 02:00", "paused": False},
        after={"trigger": "at 03:00", "next_fire": None},
        detail="schedule 'syncXero:0' not found",
        channel="cli",
    )
    await backend.audit.record(entry)
    assert (await backend.audit.list()).items == (entry,)


async def test_entries_list_newest_first_page_by_page(backend: Subject) -> None:
    """Entries come back newest first, a page at a time, each once; a forged cursor is refused."""
    for n in range(5):
        await backend.audit.record(_entry(backend, n))
        backend.clock.advance(1)
    first = await backend.audit.list(limit=2)
    assert first.next_cursor is not None
    second = await backend.audit.list(first.next_cursor, limit=2)
    assert second.next_cursor is not None
    third = await backend.audit.list(second.next_cursor, limit=2)
    pages = [[e.id for e in page.items] for page in (first, second, third)]
    assert (pages, third.next_cursor) == ([["e4", "e3"], ["e2", "e1"], ["e0"]], None)
    with pytest.raises(InvalidCursorError):
        await backend.audit.list("nonsense")


async def test_entries_older_than_the_retention_are_dropped(backend: Subject) -> None:
    """Once the retention (90 days) has passed, an entry is gone; newer ones stay."""
    await backend.audit.record(_entry(backend, 1))
    backend.clock.advance(timedelta(days=60))
    await backend.audit.record(_entry(backend, 2))
    backend.clock.advance(timedelta(days=31))
    await backend.audit.record(_entry(backend, 3))
    assert [e.id for e in (await backend.audit.list()).items] == ["e3", "e2"]
