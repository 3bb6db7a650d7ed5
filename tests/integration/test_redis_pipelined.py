"""The hub's scripts share one pipelined connection per server (adapters/redis/pipelined.py):
replies reach the right callers, a lost or frozen server fails the calls in flight instead
of hanging them, and the next call gets a new connection."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub_scheduler import Hub, RetryPolicy, RunState
from hub_scheduler.adapters.redis.connection import close, open_redis, pipelined
from hub_scheduler.adapters.redis.pipelined import Pipelined
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.testing import wait_for_state
from tests.integration.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture(params=["3", "2"])
async def connection(
    request: pytest.FixtureRequest, volatile_redis: RedisServer
) -> AsyncIterator[Pipelined]:
    """A pipelined connection to the private server, as a hub's scripts get one, in RESP3
    (redis-py's default) and in RESP2 (``?protocol=2``)."""
    client = open_redis(f"{volatile_redis.url}?socket_timeout=0.5&protocol={request.param}")
    found = pipelined(client)
    assert found is not None  # one real server: its scripts go down a pipelined connection
    try:
        yield found
    finally:
        await found.aclose()
        await close(client)


async def test_a_cluster_and_memory_keep_redis_pys_own_path() -> None:
    """fakeredis has no socket to take over, and a Cluster's slots move between nodes: their
    scripts run through redis-py (neither client connects until first used)."""
    for url in ("memory://", "redis+cluster://127.0.0.1:7000"):
        client = open_redis(url)
        try:
            assert pipelined(client) is None
        finally:
            await close(client)


async def test_concurrent_calls_each_get_their_own_reply(connection: Pipelined) -> None:
    """500 calls in flight at once on one connection, each with a reply of its own."""
    replies = await asyncio.gather(*(connection.call("ECHO", f"call-{i}") for i in range(500)))
    assert replies == [f"call-{i}".encode() for i in range(500)]


async def test_a_caller_that_gives_up_leaves_the_others_in_step(connection: Pipelined) -> None:
    """A cancelled call's late reply goes to nobody: the calls after it still get theirs."""
    await connection.call("PING")  # connected: the next call is written as soon as it runs
    slow = asyncio.ensure_future(connection.call("BLPOP", "nothing-here", "0.2"))
    await asyncio.sleep(0)  # let it run, and so be written
    slow.cancel()
    assert await connection.call("ECHO", "after") == b"after"
    assert await connection.call("PING") == b"PONG"


async def test_error_replies_raise_redis_pys_errors(connection: Pipelined) -> None:
    """An error reply fails its own call only, with the exception redis-py would raise."""
    await connection.call("SET", "text", "x")
    with pytest.raises(ResponseError, match="not an integer"):
        await connection.call("INCR", "text")
    assert await connection.call("GET", "text") == b"x"


async def test_a_frozen_server_fails_the_calls_in_flight(
    volatile_redis: RedisServer, connection: Pipelined
) -> None:
    """Against a redis-server that stopped answering (SIGSTOP), the calls waiting fail with
    redis-py's TimeoutError once the socket timeout has passed, instead of hanging; once it
    answers again the next call gets a new connection."""
    assert volatile_redis.process is not None
    await connection.call("PING")
    volatile_redis.process.send_signal(signal.SIGSTOP)
    try:
        calls = [asyncio.ensure_future(connection.call("ECHO", str(i))) for i in range(3)]
        for call in calls:
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(call, 10)  # a hang would raise the builtin TimeoutError
    finally:
        volatile_redis.process.send_signal(signal.SIGCONT)
    assert await connection.call("ECHO", "again") == b"again"


async def test_a_lost_connection_fails_its_calls_and_the_next_call_reconnects(
    volatile_redis: RedisServer, connection: Pipelined
) -> None:
    """A server that goes away fails the calls in flight as lost (their effect is unknown);
    the next call, once it is back, opens a new connection."""
    await connection.call("PING")  # connected: the next call is written as soon as it runs
    waiting = asyncio.ensure_future(connection.call("BLPOP", "nothing-here", "5"))
    await asyncio.sleep(0)
    await volatile_redis.stop()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(waiting, 10)
    await volatile_redis.start()
    assert await connection.call("PING") == b"PONG"


async def test_a_hub_enqueues_after_a_restart_that_forgot_its_scripts(
    volatile_redis: RedisServer,
) -> None:
    """After a restart the server knows none of the scripts (NOSCRIPT): the hub loads them
    again on its new connection, and the run is enqueued and runs once."""
    async with Hub(volatile_redis.url) as hub:
        ran: list[str] = []
        done = asyncio.Event()

        @hub.job("after")
        async def after(ctx: JobContext) -> None:
            ran.append(ctx.run_id)
            done.set()

        await hub.enqueue("after")
        await volatile_redis.restart()  # not persistent: the first run is gone with its scripts
        run_id = await hub.enqueue("after")
        async with hub.worker():
            await asyncio.wait_for(done.wait(), 30)
        assert ran == [run_id]
        assert (await hub.history.get(run_id)).state is RunState.SUCCEEDED


async def test_a_hub_on_a_frozen_server_reports_it_unavailable(volatile_redis: RedisServer) -> None:
    """hub.enqueue against a frozen Redis fails as unavailable within the socket timeout."""
    assert volatile_redis.process is not None
    async with Hub(f"{volatile_redis.url}?socket_timeout=0.5") as hub:

        @hub.job("noop")
        async def noop(ctx: JobContext) -> None:
            del ctx

        await hub.enqueue("noop")
        volatile_redis.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(BackendUnavailableError):
                await asyncio.wait_for(hub.enqueue("noop"), 10)
        finally:
            volatile_redis.process.send_signal(signal.SIGCONT)
        assert await hub.enqueue("noop")


@pytest.mark.parametrize("protocol", ["2", "3"])
async def test_a_hub_works_the_same_in_either_protocol(
    volatile_redis: RedisServer, protocol: str
) -> None:
    """Lua's replies differ between RESP2 and RESP3 (booleans, nil): runs are enqueued, run,
    retried and recorded the same in both."""
    async with Hub(f"{volatile_redis.url}?protocol={protocol}") as hub:
        attempts: list[int] = []
        done = asyncio.Event()

        @hub.job("flaky", retry=RetryPolicy(max_retries=1, base_delay=timedelta(0)))
        async def flaky(ctx: JobContext) -> None:
            attempts.append(ctx.attempt)
            if ctx.attempt == 1:
                raise RuntimeError("first attempt fails")
            done.set()

        run_id = await hub.enqueue("flaky", idempotency_key="once")
        assert await hub.enqueue("flaky", idempotency_key="once") == run_id
        async with hub.worker():
            await asyncio.wait_for(done.wait(), 30)
            await wait_for_state(hub, run_id, RunState.SUCCEEDED)
        assert attempts == [1, 2]


async def test_a_closed_connection_stays_closed(connection: Pipelined) -> None:
    """Once its client is closed, a call fails at once instead of opening a connection that
    nothing would close."""
    await connection.call("PING")
    await connection.aclose()
    with pytest.raises(RedisConnectionError):
        await connection.call("PING")
