"""Sharding's pure parts: where a job lives, what the shards are called, the shards= argument."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_scheduler.adapters.sharded import (
    CLUSTER_SLOTS,
    MergedListing,
    cluster_slot,
    shard_of,
    shard_prefixes,
    split_shards,
)
from hub_scheduler.domain.errors import InvalidBackendUrlError, InvalidCursorError
from hub_scheduler.domain.ports import Page

START = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("job", "count", "shard"),
    [
        ("sendInvoice", 3, 1),
        ("sendInvoice", 6, 1),
        ("cleanup", 3, 0),
        ("report.daily", 3, 0),
        ("é", 4, 2),
    ],
)
def test_a_job_has_the_same_shard_everywhere(job: str, count: int, shard: int) -> None:
    """A job's shard is crc32 of its name modulo the count: fixed values, not hash()."""
    assert shard_of(job, count) == shard


def test_a_job_has_the_same_shard_in_another_interpreter() -> None:
    """A fresh interpreter (another PYTHONHASHSEED) places jobs where this one does."""
    jobs = ["a", "b", "sendInvoice", "resize-image", "x" * 100]
    code = (
        "from hub_scheduler.adapters.sharded import shard_of;"
        f"print([shard_of(j, 5) for j in {jobs!r}])"
    )
    other = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == str([shard_of(j, 5) for j in jobs])


@pytest.mark.parametrize(
    ("tag", "slot"),
    [("hub", 2434), ("hub.0", 880), ("foo", 12182), ("user1000", 3443)],
)
def test_cluster_slot_is_redis_keyslot(tag: str, slot: int) -> None:
    """The slot of a hash tag is CRC16/XMODEM modulo 16384, as CLUSTER KEYSLOT says."""
    assert cluster_slot(tag) == slot


@given(
    st.from_regex(r"[A-Za-z0-9_.:\-]{1,40}", fullmatch=True),
    st.integers(min_value=2, max_value=12),
)
def test_shards_get_distinct_tags_spread_over_the_slot_ranges(prefix: str, count: int) -> None:
    """Shard i's tag is in the middle half of the i-th of `count` equal slot ranges, so a
    Cluster with equal slot ranges per master gets them spread over its masters."""
    prefixes = shard_prefixes(prefix, count)
    width = CLUSTER_SLOTS / count
    assert [int(cluster_slot(p) // width) for p in prefixes] == list(range(count))
    assert all(p.startswith(f"{prefix}.{i}") for i, p in enumerate(prefixes))


def test_shard_prefixes_are_stable() -> None:
    """The names are a function of prefix and count only (every process finds the same)."""
    assert shard_prefixes("hub", 3) == ["hub.0-2", "hub.1-8", "hub.2-3"]
    assert shard_prefixes("hub", 2) == shard_prefixes("hub", 2)


@pytest.mark.parametrize(
    ("url", "bare", "count"),
    [
        ("redis://h:6379/0", "redis://h:6379/0", 1),
        ("redis://h:6379/0?shards=4", "redis://h:6379/0", 4),
        ("redis+cluster://h1:7000,h2:7001?shards=6", "redis+cluster://h1:7000,h2:7001", 6),
        ("memory://?shards=3", "memory://", 3),
        (
            "postgresql://app:p%40ss@db/jobs?sslmode=require&shards=2&application_name=a+b",
            "postgresql://app:p%40ss@db/jobs?sslmode=require&application_name=a+b",
            2,
        ),
        ("redis://h?wait_replicas=1&shards=1", "redis://h?wait_replicas=1", 1),
        ("redis://h?shard=2", "redis://h?shard=2", 1),
    ],
)
def test_the_shards_argument_is_taken_out_and_the_rest_kept(
    url: str, bare: str, count: int
) -> None:
    """shards=N is removed; every other query argument stays exactly as written."""
    assert split_shards(url) == (bare, count)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@h?shards=0",
        "redis://:s3cret@h?shards=257",
        "redis://:s3cret@h?shards=two",
        "redis://:s3cret@h?shards=",
        "redis://:s3cret@h?shards=2&shards=3",
        "redis://:s3cret@h?shards=-1",
    ],
)
def test_a_bad_shard_count_is_refused_without_the_url(url: str) -> None:
    """A count that is not one whole number from 1 to 256 is InvalidBackendUrlError, and
    the message holds neither the URL nor its password."""
    with pytest.raises(InvalidBackendUrlError) as caught:
        split_shards(url)
    assert "s3cret" not in str(caught.value)
    assert "shards= takes one whole number from 1 to 256" in str(caught.value)


# --- merged listings over fake shards -----------------------------------------------------------

#: (key, id) items of one shard, newest first, as a shard lists them.
Items = list[tuple[int, str]]


@attrs.define
class FakeShards:
    """Shards listing in-memory items newest first under offset cursors; with `scan`, a
    call reads at most that many items and may answer a short page with a cursor, as a
    filtered history listing does."""

    shards: list[Items]
    wanted: Callable[[str], bool] = lambda _: True
    scan: int | None = None
    calls: int = 0

    async def fetch(self, shard: int, cursor: str | None, limit: int) -> Page[tuple[int, str]]:
        self.calls += 1
        items = self.shards[shard]
        start = int(cursor) if cursor else 0
        if cursor is not None and not cursor.isdigit():
            raise InvalidCursorError(cursor)
        found: Items = []
        at = start
        while (
            at < len(items) and len(found) < limit and (self.scan is None or at - start < self.scan)
        ):
            if self.wanted(items[at][1]):
                found.append(items[at])
            at += 1
        return Page(tuple(found), str(at) if at < len(items) else None)


def _listing(fake: FakeShards) -> MergedListing[tuple[int, str]]:
    return MergedListing(
        fake.fetch,
        len(fake.shards),
        lambda item: START + timedelta(seconds=item[0]),
        lambda item: item[1],
    )


async def _pages(listing: MergedListing[tuple[int, str]], limit: int) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    cursor = None
    for _ in range(10_000):
        page = await listing.page(cursor, limit)
        seen.extend(page.items)
        if (cursor := page.next_cursor) is None:
            return seen
    raise AssertionError("never ended")


shard_items = st.lists(st.integers(0, 6), max_size=12).map(lambda keys: sorted(keys, reverse=True))


@given(
    st.lists(shard_items, min_size=1, max_size=4),
    st.integers(1, 5),
    st.none() | st.integers(1, 4),
    st.integers(1, 3),
)
async def test_merged_pages_are_the_merge_of_the_shards(
    keys: list[list[int]], limit: int, scan: int | None, every: int
) -> None:
    """Page after page, a merged listing gives every matching item of every shard exactly
    once, newest first (ties by shard, then in the shard's order), whatever the page size,
    however many keys tie, and when shards answer short pages while scanning."""
    shards = [[(k, f"{s}-{n}") for n, k in enumerate(ks)] for s, ks in enumerate(keys)]
    fake = FakeShards(shards, lambda ident: int(ident.split("-")[1]) % every == 0, scan)
    expected = sorted(
        ((k, s, n, ident) for s, items in enumerate(shards) for n, (k, ident) in
         enumerate(items) if fake.wanted(ident)),
        key=lambda e: (-e[0], e[1], e[2]),
    )  # fmt: skip
    assert await _pages(_listing(fake), limit) == [(k, ident) for k, _, _, ident in expected]


async def test_an_item_removed_during_a_page_is_stepped_over() -> None:
    """When the last item taken from a shard is gone by the time its cursor is worked out,
    the cursor stops before the first older item: nothing else is lost or repeated."""
    fake = FakeShards([[(9, "a9"), (5, "a5"), (4, "a4"), (1, "a1")], [(8, "b8"), (2, "b2")]])
    listing = _listing(fake)
    original = fake.fetch

    async def fetch(shard: int, cursor: str | None, limit: int) -> Page[tuple[int, str]]:
        if fake.calls == 2:  # after the first page of each shard: a5 is retried away
            fake.shards[0].remove((5, "a5"))
        return await original(shard, cursor, limit)

    listing = attrs.evolve(listing, fetch=fetch)
    first = await listing.page(None, 3)
    assert first.items == ((9, "a9"), (8, "b8"), (5, "a5"))
    rest = await _pages_from(listing, first.next_cursor, 3)
    assert rest == [(4, "a4"), (2, "b2"), (1, "a1")]


async def _pages_from(
    listing: MergedListing[tuple[int, str]], cursor: str | None, limit: int
) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    while cursor is not None:
        page = await listing.page(cursor, limit)
        seen.extend(page.items)
        cursor = page.next_cursor
    return seen
