"""Sentinel failover under load: the master is SIGKILLed while runs are enqueued and worked;
the sentinels promote the replica, the hub follows by itself, and every enqueue that returned
an id is run.

The hub's URL asks for ``wait_replicas=1``: an enqueue returns only once the replica has it,
which is what makes "every acknowledged run survives" hold across an asynchronous failover.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from hub_scheduler import Hub, RunState
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.testing import wait_for_state
from tests.conftest import fresh_prefix

pytestmark = pytest.mark.redis

TOPOLOGIES = Path(__file__).resolve().parents[2] / ".ci" / "redis-topologies"
REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
BEFORE, AFTER = 100, 100


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A private Sentinel group (master, replica, three sentinels): its URL and directory."""
    if not os.environ.get("HUB_SCHEDULER_TEST_REDIS_SERVER"):
        pytest.skip("HUB_SCHEDULER_TEST_REDIS_SERVER is not set; failover test skipped")
    started = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(TOPOLOGIES), "sentinel", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
        )
        yield exports["HUB_SCHEDULER_TEST_REDIS_SENTINEL_URL"], tmp_path / "sentinel"
    finally:
        stop = [sys.executable, str(TOPOLOGIES), "stop", str(tmp_path)]
        subprocess.run(stop, check=False)  # noqa: S603 - our own script


def _master_port(sentinel_url: str) -> str:
    first = sentinel_url.removeprefix("redis+sentinel://").split(",")[0]
    reply = subprocess.run(  # noqa: S603 - the machine's redis-cli
        [REDIS_CLI, "-p", first.split(":")[1], "sentinel", "get-master-addr-by-name",
         "hubmaster"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return reply.stdout.split()[1]


def _restart(directory: Path, port: str) -> None:
    """Start the killed master again, as its supervisor would; the sentinels make it a
    replica of the new master (so changes can again be confirmed by one replica)."""
    server = os.environ["HUB_SCHEDULER_TEST_REDIS_SERVER"]
    subprocess.run(  # noqa: S603 - the test server binary
        [server, "--port", port, "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "yes",
         "--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "log")],
        check=True,
    )  # fmt: skip


async def _produce(
    hub: Hub, acknowledged: list[str], refusals: list[str], halfway: asyncio.Event
) -> None:
    """Enqueue until `BEFORE + AFTER` runs are acknowledged, through whatever happens."""
    while len(acknowledged) < BEFORE + AFTER:
        if len(acknowledged) == BEFORE:
            halfway.set()
        try:
            acknowledged.append(await hub.enqueue("work"))
        except BackendUnavailableError as exc:
            refusals.append(exc.cause)  # not acknowledged: the producer may try again
            await asyncio.sleep(0.1)  # a producer's back-off, not a wait for a result


async def test_every_acknowledged_run_survives_a_master_killed_under_load(
    group: tuple[str, Path],
) -> None:
    """Runs are enqueued and worked without pause; after 100 the master is killed -9. The
    sentinels promote the replica, the killed server comes back as a replica, and every
    acknowledged run succeeds, with the worker and the producer reconnecting on their own."""
    url, directory = group
    old_master = _master_port(url)
    acknowledged: list[str] = []
    refusals: list[str] = []
    async with Hub(f"{url}?wait_replicas=1", prefix=fresh_prefix()) as hub:

        @hub.job("work")
        async def work(ctx: JobContext) -> None:
            del ctx

        async with hub.worker(lease=timedelta(seconds=5), poll=timedelta(seconds=0.5)):
            halfway = asyncio.Event()
            producer = asyncio.create_task(_produce(hub, acknowledged, refusals, halfway))
            async with asyncio.timeout(60):
                await halfway.wait()
                pid = int((directory / "master" / "redis.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                # The sentinels push nothing to us: ask them until they have voted.
                while (await asyncio.to_thread(_master_port, url)) == old_master:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                _restart(directory / "master", old_master)
                await producer
            for run_id in acknowledged:
                await wait_for_state(hub, run_id, RunState.SUCCEEDED, timeout=60)
    assert refusals, "the kill did not interrupt the producer"
