"""Paging over registered jobs by name, and following a paged listing to its end."""

from __future__ import annotations

import pytest

from hub_scheduler.domain.admin import (
    PAGE_MAX,
    decode_page_cursor,
    encode_page_cursor,
    every_page,
)
from hub_scheduler.domain.errors import InvalidCursorError
from hub_scheduler.domain.model import JobDefinition
from hub_scheduler.domain.ports import Page
from hub_scheduler.domain.registry import JobContext, Registry


async def _noop(ctx: JobContext) -> None:
    del ctx


def test_names_page_in_sorted_order_after_any_name() -> None:
    """Names come sorted whatever the registration order; a name not registered is a
    position too; a job registered later joins the order."""
    registry = Registry()
    for name in ("c", "a", "e"):
        registry.add(JobDefinition(name), _noop)
    assert registry.names_after(None, 2) == (["a", "c"], True)
    assert registry.names_after("c", 2) == (["e"], False)
    assert registry.names_after("b", 5) == (["c", "e"], False)
    registry.add(JobDefinition("d"), _noop)
    assert registry.names_after("c", 1) == (["d"], True)


@pytest.mark.parametrize("key", ["job", "report:0", "ünïcode id"])
def test_a_page_cursor_gives_back_its_key(key: str) -> None:
    """What a cursor ends at reads back from it."""
    assert decode_page_cursor(encode_page_cursor(key)) == key


@pytest.mark.parametrize("cursor", ["job", "k1.", "k1.____", "s1.abc"])
def test_a_cursor_not_handed_out_is_refused(cursor: str) -> None:
    """Anything but an encoded key raises `InvalidCursorError`."""
    with pytest.raises(InvalidCursorError):
        decode_page_cursor(cursor)


async def test_every_page_follows_the_cursor_to_the_end() -> None:
    """Pages of `PAGE_MAX` are read until one has no cursor; nothing is lost or repeated."""
    items = list(range(2 * PAGE_MAX + 3))
    asked: list[tuple[str | None, int]] = []

    async def read(cursor: str | None, limit: int) -> Page[int]:
        asked.append((cursor, limit))
        start = int(cursor or 0)
        end = start + limit
        return Page(tuple(items[start:end]), str(end) if end < len(items) else None)

    assert await every_page(read) == items
    assert asked == [(None, PAGE_MAX), (str(PAGE_MAX), PAGE_MAX), (str(2 * PAGE_MAX), PAGE_MAX)]
