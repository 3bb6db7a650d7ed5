"""Kubernetes probes of real worker and scheduler processes whose Redis goes away: ``/livez``
stays 200 (a process waiting for Redis is alive; restarting it would not help), ``/readyz``
turns 503, and both are 200 again once Redis is back."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import pytest

from tests.integration.redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

APP = "tests.cli.sample_app:hub"


async def _get(port: int, path: str) -> int:
    """The status code of ``GET path`` on the probe port."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()
        await writer.wait_closed()


async def _until(port: int, path: str, status: int) -> None:
    """Ask until `path` answers `status` (at most 20 s): the process, another program,
    gives no event to await, as `RedisServer.start` polls PING."""
    async with asyncio.timeout(20):
        while True:
            try:
                if await _get(port, path) == status:
                    return
            except OSError:
                pass  # not listening yet
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("command", ["worker", "scheduler"])
async def test_livez_survives_a_redis_outage_and_readyz_follows_it(
    volatile_redis: RedisServer, command: str
) -> None:
    """Redis stopped under the process: livez 200, readyz 503; Redis back: readyz 200;
    SIGTERM still exits 0."""
    port = free_port()
    env = {**os.environ, "SAMPLE_PREFIX": f"hubtest-{uuid.uuid4().hex[:10]}",
           "HUB_SCHEDULER_URL": volatile_redis.url, "HUB_SCHEDULER_ALERTS": "false"}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", command, APP,
        "--health-port", str(port), "--health-host", "127.0.0.1",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    noticed = asyncio.Event()

    async def read(stream: asyncio.StreamReader) -> None:
        while line := (await stream.readline()).decode():
            lines.append(line)
            if volatile_redis.process is None and "WARNING" in line:
                noticed.set()  # the engine met the outage

    reading = asyncio.create_task(read(process.stderr))
    try:
        await _until(port, "/readyz", 200)
        assert await _get(port, "/livez") == 200
        await volatile_redis.stop()
        assert await _get(port, "/readyz") == 503
        await asyncio.wait_for(noticed.wait(), 20)
        assert (await _get(port, "/livez"), await _get(port, "/readyz")) == (200, 503)
        await volatile_redis.start()
        await _until(port, "/readyz", 200)
        assert (await _get(port, "/livez"), await _get(port, "/nope")) == (200, 404)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()
            await reading
    assert process.returncode == 0, "".join(lines)
