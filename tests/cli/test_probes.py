"""The probe server behind ``--health-port``: /livez asks only whether the engine runs,
/readyz also whether the backend answers; a port that cannot be had is one line, exit 2."""

from __future__ import annotations

import asyncio
import socket

import pytest
from click.testing import CliRunner

from hub_scheduler.entrypoints.cli import cli
from hub_scheduler.entrypoints.probes import ProbeServer


async def _ask(port: int, request: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("alive", "backend", "livez", "readyz"),
    [
        (True, "up", 200, 200),
        (True, "down", 200, 503),  # a process waiting for its backend is alive, not ready
        (True, "raises", 200, 503),
        (False, "up", 503, 503),  # its loops ended: restart it
    ],
)
async def test_livez_and_readyz(alive: bool, backend: str, livez: int, readyz: int) -> None:
    """/livez follows the engine only; /readyz the engine and the backend."""

    async def ready() -> bool:
        if backend == "raises":
            raise ConnectionError
        return backend == "up"

    server = ProbeServer(lambda: alive, ready, "127.0.0.1")
    port = await server.start()
    try:
        answers = [await _ask(port, f"GET {p} HTTP/1.1\r\n\r\n") for p in ("/livez", "/readyz")]
    finally:
        await server.aclose()
    assert [_status(a) for a in answers] == [livez, readyz]


async def test_other_paths_methods_and_head() -> None:
    """An unknown path is 404, POST 405; HEAD has the status and no body."""

    async def ready() -> bool:
        return True

    server = ProbeServer(lambda: True, ready, "127.0.0.1")
    port = await server.start()
    try:
        other = await _ask(port, "GET /metrics HTTP/1.1\r\n\r\n")
        post = await _ask(port, "POST /livez HTTP/1.1\r\n\r\n")
        head = await _ask(port, "HEAD /readyz HTTP/1.1\r\n\r\n")
    finally:
        await server.aclose()
    assert (_status(other), _status(post), _status(head)) == (404, 405, 200)
    assert head.endswith(b"\r\n\r\n")


def test_a_taken_health_port_is_one_line_and_exit_2() -> None:
    """A --health-port someone else listens on: exit 2, one line naming it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli,
            ["worker", "tests.cli.sample_app:hub", "--url", "memory://",
             "--health-port", str(port), "--health-host", "127.0.0.1"],
        )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert len(result.stderr.splitlines()) == 1
