"""The shared store on every backend that has one: small values with an expiry, per hub.

Expiry runs on the store's own clock (real time), not the hub's, so the tests read the time
left rather than waiting for it to run out.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.contract.conftest import Subject


async def test_set_get_and_delete(backend: Subject) -> None:
    """A value set reads back as bytes, is replaced by the next set, and is gone once
    deleted; an absent key reads None and deleting it is not an error."""
    shared = backend.shared
    assert await shared.get("limit:alice") is None
    await shared.set("limit:alice", b"1")
    await shared.set("limit:alice", b"2")
    assert await shared.get("limit:alice") == b"2"
    await shared.delete("limit:alice")
    await shared.delete("limit:alice")
    assert await shared.get("limit:alice") is None


async def test_ttl_is_the_time_left(backend: Subject) -> None:
    """A value set for a minute has at most a minute left (and more than 50 s, however slow
    the test); one without expiry, or no value at all, has None."""
    shared = backend.shared
    await shared.set("window", b"x", timedelta(minutes=1))
    await shared.set("forever", b"y")
    left = await shared.ttl("window")
    assert left is not None
    assert timedelta(seconds=50) < left <= timedelta(minutes=1)
    assert (await shared.ttl("forever"), await shared.ttl("absent")) == (None, None)
    await shared.set("window", b"z")  # a set without ttl keeps the value forever
    assert await shared.ttl("window") is None


async def test_clear_removes_this_hubs_values_only(backend: Subject) -> None:
    """clear empties this hub's store; another hub's values on the same store stay."""
    async with backend.neighbour() as other:
        await backend.shared.set("a", b"1")
        await backend.shared.set("b", b"2", timedelta(minutes=5))
        await other.shared.set("a", b"theirs")
        assert await backend.shared.get("a") == b"1"
        await backend.shared.clear()
        assert (await backend.shared.get("a"), await backend.shared.get("b")) == (None, None)
        assert await other.shared.get("a") == b"theirs"


async def test_swap_stores_only_over_the_expected_value(backend: Subject) -> None:
    """swap from None creates an absent value once; swap from a value replaces it only while
    it is still that value; a refused swap changes nothing."""
    shared = backend.shared
    assert await shared.swap("state", None, b"v1") is True
    assert await shared.swap("state", None, b"other") is False
    assert await shared.swap("state", b"v0", b"other") is False
    assert await shared.swap("state", b"v1", b"v2", timedelta(minutes=1)) is True
    assert await shared.get("state") == b"v2"
    left = await shared.ttl("state")
    assert left is not None
    assert left <= timedelta(minutes=1)
    assert await shared.swap("absent", b"v1", b"x") is False
    assert await shared.get("absent") is None


async def test_racing_swaps_have_one_winner(backend: Subject) -> None:
    """Of many processes swapping from the same value at once, exactly one wins."""
    async with backend.restarted() as second, backend.restarted() as third:
        stores = [backend.shared, second.shared, third.shared]
        await backend.shared.set("doc", b"v1")
        results = await asyncio.gather(
            *(store.swap("doc", b"v1", f"from-{i}".encode()) for i, store in enumerate(stores * 3))
        )
        assert sum(results) == 1
        winner = results.index(True)  # the swap that won wrote its own value
        assert await third.shared.get("doc") == f"from-{winner}".encode()
