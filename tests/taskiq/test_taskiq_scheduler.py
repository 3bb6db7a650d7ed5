"""Real processes on real Redis: two ``taskiq scheduler`` processes on the example app (its
broker switched to `HubBroker`, nothing else) fire each slot of a label schedule once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest

from hub_scheduler import Hub
from tests.integration.readiness import schedulers_ready

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]

TASK = "tests.taskiq.example_app:heavy_task"


async def _taskiq_scheduler(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskiq", "scheduler", "tests.taskiq.example_app:scheduler",
        "--no-configure-logging", env=env, start_new_session=True,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def test_two_taskiq_schedulers_fire_each_minute_once(redis_url: str, redis_hub: Hub) -> None:
    """Both schedulers run across a minute boundary: the every-minute label schedule has one
    run per slot, each with the label's args, and one ledger record per slot."""
    env = {**os.environ, "HUB_URL": redis_url, "HUB_PREFIX": redis_hub.prefix}
    processes = [await _taskiq_scheduler(env) for _ in range(2)]
    try:
        # Once both are up (importing taskiq takes seconds on a loaded machine), the
        # experiment lasts past the next minute boundary (the slot) by 10 s; not a wait for a
        # result.
        await schedulers_ready(redis_hub, 2)
        await asyncio.sleep(60 - datetime.now(UTC).second + 10)
    finally:
        for process in processes:
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            async with asyncio.timeout(30):
                await process.wait()
    runs = (await redis_hub.history.list(job=TASK, limit=100)).items
    per_slot = Counter(run.slot for run in runs)
    ledger = (await redis_hub.schedules.slots(f"{TASK}:0", limit=100)).items
    assert len(per_slot) >= 1
    assert set(per_slot.values()) == {1}
    assert {run.payload["args"][0] for run in runs} == {1}
    assert {r.slot for r in ledger if r.run_id} == set(per_slot)
