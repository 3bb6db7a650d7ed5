"""The real-Redis and in-memory backends both run the Lua our adapters rely on."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import fakeredis
import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub_scheduler.adapters.redis.connection import close, open_redis
from tests.integration.redis_server import RedisServer

# A compare-and-set in Lua: the shape of every atomic step the queue and scheduler take.
COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] or (current == false and ARGV[1] == '') then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


async def _exercise(client: aioredis.Redis, key: str) -> list[int]:
    script = client.register_script(COMPARE_AND_SET)
    return [
        int(await script(keys=[key], args=["", "slot-1"])),
        int(await script(keys=[key], args=["", "slot-1"])),
        int(await script(keys=[key], args=["slot-1", "slot-2"])),
    ]


@pytest.mark.redis
async def test_real_redis_runs_lua_compare_and_set(
    real_redis: aioredis.Redis, key_prefix: str
) -> None:
    """A second writer with a stale expectation loses on real Redis."""
    assert await _exercise(real_redis, f"{key_prefix}:slot") == [1, 0, 1]
    assert await real_redis.get(f"{key_prefix}:slot") == b"slot-2"


async def test_memory_backend_runs_the_same_lua(key_prefix: str) -> None:
    """fakeredis with lupa gives the same answers as real Redis (memory:// parity)."""
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    try:
        assert await _exercise(client, f"{key_prefix}:slot") == [1, 0, 1]
    finally:
        await client.aclose()


async def test_a_frozen_redis_times_out_writes_and_reads(tmp_path: Path) -> None:
    """The socket timeout holds for sends as for reads: against a redis-server that stopped
    answering (SIGSTOP: its socket stays open, nothing drains it), a 64 MB write and a read
    each fail with redis-py's TimeoutError, instead of hanging."""
    server = RedisServer(tmp_path, persistent=False)
    await server.start()
    assert server.process is not None
    client = open_redis(f"{server.url}?socket_timeout=0.5")
    try:
        await client.ping()  # connected
        server.process.send_signal(signal.SIGSTOP)
        try:
            for command in (client.set("big", b"x" * (64 << 20)), client.get("big")):
                # redis-py's TimeoutError, not the guard's: a hang would raise the builtin one.
                with pytest.raises(RedisTimeoutError):
                    await asyncio.wait_for(command, 10)
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert await client.ping()  # a new connection, once it answers again
    finally:
        await close(client)
        await server.stop()
