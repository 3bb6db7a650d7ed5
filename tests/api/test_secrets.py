"""Which secret signs the admin API's tokens when none is configured."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from datetime import timedelta

import httpx

from hub_scheduler import Hub, demo
from hub_scheduler.entrypoints.api.app import create_app, jwt_secret, process_secret
from hub_scheduler.entrypoints.api.security import mint_token
from hub_scheduler.entrypoints.settings import Settings
from tests.api.conftest import bearer, client_for

PUBLISHED = "hub-scheduler-in-memory-demo-secret-not-for-production"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_only_the_bundled_demo_uses_the_published_secret() -> None:
    """On memory:// without a secret, the demo's hub signs with the demo's published secret;
    any other hub with a random secret of the process, the same for every app it builds."""
    settings = Settings(url="memory://")
    assert jwt_secret(settings, demo.hub) == demo.SECRET == PUBLISHED
    other = jwt_secret(settings, Hub())
    assert other == process_secret() == jwt_secret(settings)
    assert other != PUBLISHED
    assert len(other) >= 48


async def test_an_app_on_memory_refuses_tokens_signed_with_the_demo_secret() -> None:
    """A forged SystemAdmin token (signed with the published secret) is a 401 for an app
    that is not the demo; a token of the process's own secret works."""
    async with Hub() as hub:
        app = create_app(hub, Settings(url=hub.url))
        forged = mint_token(PUBLISHED, "mallory", "SystemAdmin", timedelta(hours=1))
        genuine = mint_token(process_secret(), "alice", "SystemAdmin", timedelta(hours=1))
        async with client_for(app) as client:
            refused = await client.post("/api/v1/queue/pause", headers=bearer(forged))
            allowed = await client.get("/api/v1/queue", headers=bearer(genuine))
    assert (refused.status_code, allowed.status_code) == (401, 200)


async def test_serve_of_another_app_on_memory_mints_its_banner_token_with_a_random_secret(
) -> None:  # fmt: skip
    """`serve` of an app on memory:// prints a token that works, and the demo's published
    secret does not."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_SCHEDULER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", "serve", "tests.e2e.dashboard_app:hub",
        "--port", str(port), "--no-worker", "--no-scheduler",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner = [
            (await asyncio.wait_for(process.stdout.readline(), 20)).decode() for _ in range(4)
        ]
        match = re.search(r"Bearer (\S+)", banner[3])
        assert match is not None, banner
        forged = mint_token(PUBLISHED, "mallory", "SystemAdmin", timedelta(hours=1))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(20):
                while True:
                    try:
                        await client.get("/api/v1/health")
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.1)  # uvicorn is still binding the port
            genuine = await client.get("/api/v1/jobs", headers=bearer(match.group(1)))
            refused = await client.get("/api/v1/jobs", headers=bearer(forged))
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            await process.wait()
    assert (genuine.status_code, refused.status_code) == (200, 401)
