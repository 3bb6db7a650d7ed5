"""Vitals of a real redis-server (INFO and CONFIG parsed), a managed Redis that refuses
CONFIG, and the memory alert firing on a reading."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub_scheduler import Hub
from hub_scheduler.domain.alerts import AlertPolicy, NoticeKind
from hub_scheduler.domain.ports import BackendVitals
from hub_scheduler.testing import FakeClock, RecordingNotifier
from tests.integration.redis_server import RedisServer

pytestmark = pytest.mark.redis

MAXMEMORY = 64 * 1024 * 1024


@pytest.fixture
async def tmp_server(redis_url: str, tmp_path: Path) -> AsyncIterator[list[RedisServer]]:
    """Private redis-servers the test starts (stopped afterwards)."""
    del redis_url  # only the switch: these servers are our own
    servers: list[RedisServer] = []
    yield servers
    for server in servers:
        await server.stop()


async def _started(servers: list[RedisServer], path: Path, *options: str) -> RedisServer:
    server = RedisServer(path, persistent=False, options=options)
    await server.start()
    servers.append(server)
    return server


async def _vitals(url: str) -> BackendVitals:
    async with Hub(url, prefix="vitals") as hub:
        vitals = await hub.admin.vitals()
    assert vitals is not None
    return vitals


async def test_redis_info_and_config_are_read(
    tmp_server: list[RedisServer], tmp_path: Path
) -> None:
    """A server with maxmemory 64 MB and allkeys-lru reports them, its memory, clients, ops/s
    and evictions, and names the policy as a problem."""
    server = await _started(
        tmp_server, tmp_path, "--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "allkeys-lru"
    )
    vitals = await _vitals(server.url)
    assert (vitals.kind, vitals.max_memory, vitals.eviction_policy) == (
        "redis", MAXMEMORY, "allkeys-lru",
    )  # fmt: skip
    assert vitals.used_memory is not None
    assert 0 < vitals.used_memory < MAXMEMORY
    assert vitals.connected_clients is not None
    assert vitals.connected_clients >= 1
    assert (vitals.evicted_keys, vitals.ops_per_second is not None) == (0, True)
    assert len(vitals.problems) == 1
    assert "allkeys-lru" in vitals.problems[0]


async def test_no_maxmemory_is_no_limit(tmp_server: list[RedisServer], tmp_path: Path) -> None:
    """Without maxmemory (0) the limit and the ratio are None, and noeviction is no problem."""
    vitals = await _vitals((await _started(tmp_server, tmp_path)).url)
    assert (vitals.max_memory, vitals.memory_ratio, vitals.eviction_policy, vitals.problems) == (
        None, None, "noeviction", (),
    )  # fmt: skip


async def test_config_disabled_is_tolerated(tmp_server: list[RedisServer], tmp_path: Path) -> None:
    """A managed Redis that disables CONFIG: vitals still come (the policy from INFO)."""
    server = await _started(
        tmp_server, tmp_path, "--maxmemory-policy", "volatile-lru", "--rename-command", "CONFIG", ""
    )
    vitals = await _vitals(server.url)
    assert (vitals.eviction_policy, vitals.used_memory is not None) == ("volatile-lru", True)


async def test_memory_alert_fires_on_a_real_reading(
    tmp_server: list[RedisServer], tmp_path: Path
) -> None:
    """The backend-memory rule fires on the real Redis's reading once its used memory is over
    the threshold share of maxmemory."""
    server = await _started(tmp_server, tmp_path, "--maxmemory", str(MAXMEMORY))
    async with Hub(server.url, prefix="vitals", clock=FakeClock()) as hub:
        reading = await hub.admin.vitals()
        assert reading is not None
        assert reading.memory_ratio is not None
        channel = RecordingNotifier()
        policy = AlertPolicy(memory_ratio=reading.memory_ratio / 2)
        await hub.alert_monitor(channel, policy=policy, id="s0").evaluate()
    [notice] = [n for n in channel.notices if n.alert.key == "backend_memory:backend"]
    assert notice.kind == NoticeKind.FIRING
    assert notice.alert.condition.details["max_memory"] == MAXMEMORY
