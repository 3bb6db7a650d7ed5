"""How the pipelined connection (adapters/redis/pipelined.py) reads replies it cannot be
shown on a healthy server: errors redis-py maps to connection errors, RESP3 booleans and push
notices. Fed straight to the protocol on a transport that records what is written."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import ConnectionPool
from redis.exceptions import BusyLoadingError, DataError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from hub_scheduler.adapters.redis.pipelined import Pipelined, _Link


class _Transport:
    """Just enough of an asyncio transport: what is written, and whether it was closed."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False
        self.protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True


class _Writer:
    def __init__(self) -> None:
        self.transport = _Transport()


def _link() -> tuple[_Link, _Transport]:
    writer = _Writer()
    link = _Link(writer, 0, asyncio.get_running_loop())  # type: ignore[arg-type]
    return link, writer.transport


async def test_a_loading_server_fails_the_call_with_redis_pys_error() -> None:
    """``-LOADING`` (a restarted server reading its data) is an error redis-py raises as a
    connection error, not a ResponseError: the call fails with it, it is not a result."""
    link, _ = _link()
    call = link.send(b"*1\r\n$4\r\nPING\r\n")
    link.data_received(b"-LOADING Redis is loading the dataset in memory\r\n")
    with pytest.raises(BusyLoadingError):
        await call


async def test_a_resp3_false_is_a_reply_and_the_next_reply_goes_to_the_next_call() -> None:
    """RESP3's ``#f`` is a whole reply (hiredis's default for "incomplete" is False too)."""
    link, _ = _link()
    first, second = link.send(b"a"), link.send(b"b")
    link.data_received(b"#f\r\n+OK\r\n")
    assert await first is False
    assert await second == b"OK"


async def test_push_notices_are_skipped_and_errors_fail_only_their_call() -> None:
    """A RESP3 push between replies goes to no call; an error reply fails its call only."""
    link, transport = _link()
    first, second = link.send(b"a"), link.send(b"b")
    link.data_received(b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n-ERR wrong\r\n:7\r\n")
    with pytest.raises(ResponseError, match="wrong"):
        await first
    assert await second == 7
    assert not transport.aborted


async def test_a_reply_split_across_reads_is_put_together() -> None:
    """Replies arrive in pieces of any size."""
    link, _ = _link()
    call = link.send(b"a")
    for piece in (b"$5\r\nhe", b"llo", b"\r\n"):
        link.data_received(piece)
    assert await call == b"hello"


async def test_a_lost_connection_fails_each_call_with_an_error_of_its_own() -> None:
    """Every call in flight fails as lost, each with its own exception (no shared traceback)."""
    link, transport = _link()
    calls = [link.send(b"a"), link.send(b"b")]
    link.connection_lost(None)
    errors = []
    for call in calls:
        with pytest.raises(RedisConnectionError) as caught:
            await call
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert transport.aborted
    assert link.closed


async def test_a_demoted_master_fails_every_call_in_flight_and_drops_the_connection() -> None:
    """``-READONLY`` (a Sentinel failover demoted the master): the calls in flight fail as
    lost, and the connection is dropped so that the next one asks the sentinels again."""
    link, transport = _link()
    calls = [link.send(b"a"), link.send(b"b")]
    link.data_received(b"-READONLY You can't write against a read only replica.\r\n")
    for call in calls:
        with pytest.raises(RedisConnectionError, match="replica"):
            await call
    assert transport.aborted
    assert link.closed


async def test_an_argument_that_cannot_be_sent_is_redis_pys_data_error() -> None:
    """An argument hiredis cannot pack fails as redis-py would (DataError, a RedisError the
    store reports as unavailable), before anything is written or connected."""
    connection = Pipelined(ConnectionPool(), timeout=1.0)
    with pytest.raises(DataError):
        await connection.call("SET", "key", object())
