"""Real processes on PostgreSQL: 3 schedulers, one SIGKILLed and restarted, fire each slot once."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from hub_scheduler import Hub, SlotOutcome
from hub_scheduler.adapters.postgres import migrate
from tests.integration.readiness import schedulers_ready

pytestmark = pytest.mark.postgres

RUN_FOR = float(os.environ.get("HUB_TEST_REPLICA_SECONDS", "30"))


async def _spawn(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", "scheduler", "tests.integration.sched_app:hub",
        env=env, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def test_every_second_slot_fires_exactly_once_across_replicas(
    pg_url: str, pg_prefix: str
) -> None:
    """3 scheduler processes for 30 s once up, one killed -9 and restarted: one run per 1 s
    slot over the window covered, no gap and no duplicate, whatever the machine's speed."""
    await migrate(pg_url, pg_prefix)
    env = {**os.environ, "HUB_PREFIX": pg_prefix, "HUB_SCHEDULER_URL": pg_url}
    env.pop("HUB_SCHEDULER_REDIS_URL", None)
    processes: list[asyncio.subprocess.Process] = []
    try:
        async with Hub(pg_url, prefix=pg_prefix) as hub:
            processes += [await _spawn(env) for _ in range(3)]
            # The experiment's clock starts once the three are up (starting processes is slow
            # on a busy box), and again once the restarted one is.
            first = await schedulers_ready(hub, 3)
            ready_at = datetime.now(UTC)
            await asyncio.sleep(RUN_FOR / 3)  # the duration of the experiment, not a wait
            victim = processes.pop(0)
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            processes.append(await _spawn(env))
            await schedulers_ready(hub, 1, besides=first)
            restarted_at = datetime.now(UTC)
            await asyncio.sleep(RUN_FOR * 2 / 3)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            async with asyncio.timeout(20):
                await process.wait()
    assert [p.returncode for p in processes] == [0, 0, 0]

    async with Hub(pg_url, prefix=pg_prefix) as hub:
        slots: list[datetime | None] = []
        cursor = None
        while True:
            page = await hub.history.list(job="tick", cursor=cursor, limit=500)
            slots.extend(run.slot for run in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        ledger = (await hub.schedules.slots("tick:0", limit=1000)).items

    per_slot = Counter(slots)
    assert set(per_slot.values()) == {1}, "a slot fired twice"
    ordered = sorted(s for s in per_slot if s is not None)
    # The window actually covered: from the first slot (at most a second after the
    # schedulers were up) to past the restart, every slot fired once, none skipped.
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(ordered))
    assert ordered[0] <= ready_at + timedelta(seconds=1)
    assert ordered[-1] >= restarted_at
    assert {record.outcome for record in ledger} == {SlotOutcome.ENQUEUED}
    assert sorted(r.slot for r in ledger) == ordered
