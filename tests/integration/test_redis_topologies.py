"""A whole hub on a real Redis Cluster and on a Sentinel group's master: jobs run, wake-ups
arrive (sharded pub/sub on the Cluster), and a paused queue resumes there."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from hub_scheduler import Hub, RunState
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.testing import wait_for_state
from tests.conftest import drop_keys, fresh_prefix

TOPOLOGIES = {
    "cluster": "HUB_SCHEDULER_TEST_REDIS_CLUSTER_URL",
    "sentinel": "HUB_SCHEDULER_TEST_REDIS_SENTINEL_URL",
}


@pytest.fixture(params=sorted(TOPOLOGIES))
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Hub]:
    """A hub on each configured topology under a fresh prefix (its keys dropped afterwards)."""
    url = os.environ.get(TOPOLOGIES[request.param])
    if not url:
        pytest.skip(f"{TOPOLOGIES[request.param]} is not set")
    async with Hub(url, prefix=fresh_prefix()) as opened:
        await opened.ping()
        try:
            yield opened
        finally:
            await drop_keys(opened)


async def test_a_worker_wakes_on_enqueue_and_on_resume(hub: Hub) -> None:
    """The worker polls only once a minute, so runs that finish at once were announced: by
    the enqueue, and by resuming the paused queue (once a pipelined publish, which a Cluster
    refuses)."""
    ran = asyncio.Event()

    @hub.job("echo")
    async def echo(ctx: JobContext) -> None:
        del ctx
        ran.set()

    async with hub.worker(poll=timedelta(seconds=60)):
        first = await hub.enqueue("echo")
        await wait_for_state(hub, first, RunState.SUCCEEDED)
        await hub.queue.pause()
        held = await hub.enqueue("echo")
        assert (await hub.queue.snapshot()).paused
        await hub.queue.resume()
        await wait_for_state(hub, held, RunState.SUCCEEDED)
    assert ran.is_set()


async def test_a_change_no_replica_confirms_is_not_acknowledged() -> None:
    """With ``wait_replicas`` above the group's one replica, an enqueue fails (after the
    timeout) instead of returning an id a failover could lose."""
    url = os.environ.get(TOPOLOGIES["sentinel"])
    if not url:
        pytest.skip(f"{TOPOLOGIES['sentinel']} is not set")
    async with Hub(f"{url}?wait_replicas=2&wait_timeout_ms=50", prefix=fresh_prefix()) as hub:
        hub.job("echo")(lambda _: None)
        try:
            with pytest.raises(BackendUnavailableError, match="1 of 2 replicas confirmed"):
                await hub.enqueue("echo")
        finally:
            await drop_keys(hub)
