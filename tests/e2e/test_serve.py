"""`hub-scheduler serve` with no Redis: the demo's 11 jobs behind the admin API, one process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_runs_the_demo_and_stops_cleanly() -> None:
    """It says how to log in, serves the 11 demo jobs, runs a triggered job, exits 0 on SIGINT."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_SCHEDULER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner = [
            (await asyncio.wait_for(process.stdout.readline(), 20)).decode() for _ in range(4)
        ]
        assert f"dashboard http://127.0.0.1:{port}/admin/" in banner[0]
        assert "memory://" in banner[2]
        match = re.search(r"Bearer (\S+)", banner[3])
        assert match is not None, banner
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(20):
                while True:
                    try:
                        jobs = await client.get("/api/v1/jobs", headers=headers)
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.1)  # uvicorn is still binding the port
            assert len(jobs.json()) == 11
            # No trusted proxies configured: a forged X-Forwarded-For is not the client.
            forged = {"X-Forwarded-For": "203.0.113.9"}
            refused = await client.post("/api/v1/jobs/clean", headers=forged, json={})
            assert refused.status_code == 401
            audit = (await client.get("/api/v1/audit", headers=headers)).json()
            assert [e["client"] for e in audit["items"] if e["outcome"] == "refused"] == [
                "127.0.0.1"
            ]
            run = await client.post(
                "/api/v1/jobs/trigger", headers=headers, json={"name": "pdReminders"}
            )
            run_id = run.json()["run_id"]
            url = f"/api/v1/runs/{run_id}"
            async with asyncio.timeout(30):
                # Another process runs the job: poll its state over HTTP, with a deadline.
                while (await client.get(url, headers=headers)).json()["state"] in (  # noqa: ASYNC110
                    "queued",
                    "active",
                ):
                    await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            await process.wait()
    assert process.returncode == 0


async def test_serve_on_an_unreachable_backend_is_one_line_without_the_password() -> None:
    """A backend that does not answer: no banner, one line on stderr, the password masked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_SCHEDULER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", "serve", "--url", "redis://:s3cret@127.0.0.1:1/0",
        env={**env, "HUB_SCHEDULER_JWT_SECRET": "j" * 40},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate()
    assert (process.returncode, stdout, stderr.decode()) == (
        1,
        b"",
        "error: cannot reach the backend at redis://:***@127.0.0.1:1/0 (ConnectionError)\n",
    )
