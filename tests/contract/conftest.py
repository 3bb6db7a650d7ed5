"""One suite, every backend: ``fake`` (`hub_scheduler.testing`), ``memory`` (fakeredis + lupa)
and ``redis`` (a real server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.connection import open_redis
from hub_scheduler.adapters.redis.keys import Keys
from hub_scheduler.adapters.redis.store import (
    RedisDeadLetters,
    RedisJobQueue,
    RedisRunHistory,
    RedisStore,
)
from hub_scheduler.domain.ports import DeadLetters, JobQueue, RunHistory
from hub_scheduler.testing import (
    FakeClock,
    FakeDeadLetters,
    FakeJobQueue,
    FakeRunHistory,
    FakeStore,
)

PAYLOAD_LIMIT = 64 * 1024


@attrs.frozen
class Backend:
    """The queue-side ports of one backend, sharing one fake clock."""

    queue: JobQueue
    dead: DeadLetters
    history: RunHistory
    clock: FakeClock
    payload_limit: int


@pytest.fixture(params=["fake", "memory", "redis"])
async def backend(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Backend]:
    """The ports on each backend, with a fake clock and a key prefix of their own."""
    if request.param == "fake":
        clock = FakeClock()
        fake = FakeStore(clock, payload_limit=PAYLOAD_LIMIT)
        yield Backend(
            FakeJobQueue(fake),
            FakeDeadLetters(fake),
            FakeRunHistory(fake),
            clock,
            PAYLOAD_LIMIT,
        )
        return
    url = request.getfixturevalue("redis_url") if request.param == "redis" else "memory://"
    client = open_redis(url)
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        pytest.fail(f"{url} is set for the tests but cannot be reached: {exc}")
    clock = FakeClock()
    keys = Keys(key_prefix.replace("hubtest:", "hubtest-"))
    store = RedisStore(client, clock, keys, payload_limit=PAYLOAD_LIMIT)
    try:
        yield Backend(
            RedisJobQueue(store),
            RedisDeadLetters(store),
            RedisRunHistory(store),
            clock,
            PAYLOAD_LIMIT,
        )
    finally:
        doomed = [key async for key in client.scan_iter(match=keys.base + "*")]
        if doomed:
            await client.delete(*doomed)
        await client.aclose()
