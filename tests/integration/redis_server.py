"""A private, restartable redis-server for the outage tests (append-only file on, or no
persistence at all: a restart then empties it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on a loopback port, with data in `directory`."""

    def __init__(
        self, directory: Path, *, persistent: bool = True, options: Sequence[str] = ()
    ) -> None:
        binary = os.environ.get("HUB_SCHEDULER_TEST_REDIS_SERVER") or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.directory = directory
        self.persistent = persistent
        #: More redis-server arguments (``--maxmemory-policy``, ``--rename-command``).
        self.options = tuple(options)
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start the server and wait until it answers PING (at most 10 s)."""
        self.process = await asyncio.create_subprocess_exec(
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes" if self.persistent else "no",
                "--appendfsync", "always",
                "--save", "",
                *self.options,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        if await client.ping():
                            return
                    except RedisError:
                        await asyncio.sleep(0.05)  # the server is still starting
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """Stop the server the way an operator would (SIGTERM: it flushes the AOF)."""
        if self.process is not None:
            self.process.terminate()
            async with asyncio.timeout(10):
                await self.process.wait()
            self.process = None

    async def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        await self.stop()
        await self.start()
