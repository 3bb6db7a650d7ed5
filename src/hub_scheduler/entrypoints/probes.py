"""Kubernetes probes for a worker or scheduler process: ``GET /livez`` and ``GET /readyz`` on
a port of its own, served by a few lines of stdlib asyncio in the engine's event loop.

``/livez`` answers 200 while the engine's loops run, whatever the backend does: a worker
waiting for Redis to come back is alive, and restarting it would not bring Redis back. It
answers from the same event loop as the engine, so a loop blocked by a handler that never
yields times out here too. ``/readyz`` answers 200 only when the engine runs, is not stopping
and the backend answers a ping within `READY_TIMEOUT`; 503 otherwise. Anything else is 404.
Nothing secret is in any answer (the body is one word).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import attrs

logger = logging.getLogger("hub_scheduler.probes")

#: How long /readyz waits for the backend's answer (a kubelet's default timeout is 1 s).
READY_TIMEOUT = 0.8
#: The most a request line and its headers may take (anything longer is not a probe).
MAX_REQUEST = 8192
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@attrs.define
class ProbeServer:
    """The probe endpoint of one process.

    Attributes:
        alive: True while the engine's loops run (``/livez``).
        ready: True when the engine may take work: running, not stopping, and its backend
            answers (``/readyz``); an exception counts as not ready.
        host: the address to listen on (all interfaces by default: the kubelet probes the
            pod's IP).
        port: the port (0: any free one; see `port` once started).
    """

    alive: Callable[[], bool]
    ready: Callable[[], Awaitable[bool]]
    host: str = "0.0.0.0"  # noqa: S104 - the kubelet probes the pod's address
    port: int = 0
    _server: asyncio.Server | None = attrs.field(default=None, init=False)

    async def start(self) -> int:
        """Listen; returns the port. Raises `OSError` when the port cannot be had."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def aclose(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    async def _is_ready(self) -> bool:
        if not self.alive():
            return False
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                return await self.ready()
        except Exception:
            return False

    async def _status(self, method: str, path: str) -> int:
        if path not in {"/livez", "/readyz"}:
            return 404
        if method not in {"GET", "HEAD"}:
            return 405
        if path == "/livez":
            return 200 if self.alive() else 503
        return 200 if await self._is_ready() else 503

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_REQUEST:
                return
            method, path, *_ = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""]
            status = await self._status(method, path.split("?", 1)[0])
            body = b"ok\n" if status == 200 else b"not ok\n"
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()
