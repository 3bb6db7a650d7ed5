"""An evicting Redis (maxmemory-policy other than noeviction) silently drops queued runs:
`check` fails with one line saying so, and a worker warns once as it starts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub_scheduler.entrypoints.cli import cli
from tests.integration.redis_server import RedisServer

pytestmark = pytest.mark.redis

APP = "tests.cli.sample_app:hub"
PROBLEM = (
    "Redis maxmemory-policy is allkeys-lru: under memory pressure it deletes keys, queued "
    "runs included; set it to noeviction"
)


@pytest.fixture
async def evicting(redis_url: str, tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private Redis with ``maxmemory-policy allkeys-lru`` (the shared one is never
    reconfigured)."""
    del redis_url  # only the switch: this server is our own
    server = RedisServer(
        tmp_path, persistent=False, options=("--maxmemory", "64mb", "--maxmemory-policy",
                                             "allkeys-lru"),
    )  # fmt: skip
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_check_fails_on_an_evicting_redis(evicting: RedisServer) -> None:
    """check exits 1 with one line naming the policy and why it matters."""
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["check", "--app", APP, "--url", evicting.url]
    )
    assert (result.exit_code, result.stderr) == (1, f"error: {PROBLEM}\n")


async def test_check_passes_on_a_noeviction_redis(redis_url: str) -> None:
    """On the suite's Redis (noeviction) check exits 0 and prints the queue's status."""
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["check", "--app", APP, "--url", redis_url]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(("ok:", "degraded:"))


async def test_worker_warns_once_at_start(evicting: RedisServer) -> None:
    """A worker on an evicting Redis logs exactly one WARNING about the policy, then works."""
    env = {**os.environ, "SAMPLE_PREFIX": f"hubtest-{uuid.uuid4().hex[:10]}",
           "HUB_SCHEDULER_URL": evicting.url}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", "worker", APP,
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not lines or "Worker ready" not in lines[-1]:
                line = await process.stderr.readline()
                assert line, f"the worker exited: {lines}"
                lines.append(line.decode())
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.communicate()
    warnings = [line for line in lines if "WARNING" in line]
    assert len(warnings) == 1, lines
    assert PROBLEM in warnings[0]
