"""What the process commands log on start (what they connected to, that they are ready), as
text or as JSON lines (``--log-format json`` or ``HUB_SCHEDULER_LOG_FORMAT=json``)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub_scheduler import Hub
from hub_scheduler.entrypoints.cli.logs import JsonFormatter
from tests.conftest import drop_keys


def test_a_json_record_has_its_fields_and_extras() -> None:
    """Level, logger, message, a UTC timestamp and every extra field; exceptions as text."""
    record = logging.makeLogRecord({
        "name": "hub_scheduler.cli", "levelno": logging.INFO, "levelname": "INFO",
        "msg": "Worker ready: concurrency %d", "args": (5,), "created": 1_780_000_000.25,
        "concurrency": 5,
    })  # fmt: skip
    assert json.loads(JsonFormatter().format(record)) == {
        "timestamp": "2026-05-28T20:26:40.250Z",
        "level": "INFO",
        "logger": "hub_scheduler.cli",
        "message": "Worker ready: concurrency 5",
        "concurrency": 5,
    }
    try:
        raise ValueError("broken")  # noqa: TRY301 - a real exception, with its traceback
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: broken" in json.loads(JsonFormatter().format(record))["exception"]


async def _process(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", *args,
        env={**os.environ, **env}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _lines_until(process: asyncio.subprocess.Process, marker: str) -> list[str]:
    """The stderr lines up to and including the first holding `marker`."""
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while not lines or marker not in lines[-1]:
            line = (await process.stderr.readline()).decode()
            assert line, f"stderr ended before {marker!r}: {lines}"
            lines.append(line.rstrip("\n"))
    return lines


async def _stop(process: asyncio.subprocess.Process) -> int | None:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        await process.communicate()
    return process.returncode


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A fresh key prefix on the test Redis, its keys dropped afterwards."""
    name = f"hubtest-{uuid.uuid4().hex[:10]}"
    yield name
    async with Hub(redis_url, prefix=name) as hub:
        await drop_keys(hub)


def _mine(lines: list[str]) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in lines]  # every line is JSON
    return [r for r in records if r["logger"] == "hub_scheduler.cli"]


@pytest.mark.redis
@pytest.mark.parametrize("how", ["option", "environment"])
async def test_the_worker_logs_its_backend_and_readiness_as_json(
    redis_url: str, prefix: str, how: str
) -> None:
    """JSON lines name the backend (redacted) and the worker's concurrency and lease."""
    option = ["--log-format", "json"] if how == "option" else []
    env = {"SAMPLE_PREFIX": prefix, "HUB_SCHEDULER_URL": redis_url,
           "HUB_SCHEDULER_LOG_FORMAT": "json" if how == "environment" else "text"}  # fmt: skip
    process = await _process(
        *option, "worker", "tests.cli.sample_app:hub", "-c", "2", "--lease", "20", env=env
    )
    try:
        connected, ready = _mine(await _lines_until(process, "Worker ready"))
    finally:
        assert await _stop(process) == 0
    assert {k: connected[k] for k in ("level", "message", "backend", "prefix")} == {
        "level": "INFO",
        "message": f"Redis connected: {redis_url} (prefix {prefix})",
        "backend": redis_url,
        "prefix": prefix,
    }
    assert connected["timestamp"].endswith("Z")
    assert ready["message"] == "Worker ready: concurrency 2, lease 20s, grace 30s, 1 jobs"
    assert (ready["concurrency"], ready["lease_seconds"], ready["jobs"]) == (2, 20.0, 1)


@pytest.mark.redis
async def test_the_scheduler_logs_its_backend_and_schedules_as_text(
    redis_url: str, prefix: str
) -> None:
    """Text lines say "Redis connected" and "Job scheduler initialized" with the count."""
    env = {"HUB_PREFIX": prefix, "HUB_SCHEDULER_URL": redis_url,
           "HUB_SCHEDULER_LOG_FORMAT": "text"}  # fmt: skip
    process = await _process("scheduler", "tests.integration.sched_app:hub", env=env)
    try:
        lines = await _lines_until(process, "Job scheduler initialized")
    finally:
        assert await _stop(process) == 0
    mine = [line.split(" ", 2)[2] for line in lines if " hub_scheduler.cli " in line]
    assert mine == [
        f"INFO hub_scheduler.cli Redis connected: {redis_url} (prefix {prefix})",
        "INFO hub_scheduler.cli Job scheduler initialized: 1 schedules",
    ]
