"""`hub-scheduler worker APP`: runs an app's jobs; bad input is one line and exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import pytest
from click.testing import CliRunner

from hub_scheduler import Hub
from hub_scheduler.entrypoints.cli import cli
from hub_scheduler.entrypoints.cli.common import run_engine
from tests.conftest import drop_keys, redis_of


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("no_colon", "APP must look like 'package.module:hub'"),
        ("tests.cli.nowhere:hub", "cannot import 'tests.cli.nowhere'"),
        (
            "tests.cli.sample_app:missing",
            "'tests.cli.sample_app:missing' must be a hub_scheduler.Hub, found nothing",
        ),
        (
            "tests.cli.sample_app:not_a_hub",
            "'tests.cli.sample_app:not_a_hub' must be a hub_scheduler.Hub, found int",
        ),
    ],
)
def test_bad_app_is_one_clear_line_and_exit_2(app: str, message: str) -> None:
    """A wrong APP path exits 2 with one line giving the reason."""
    result = CliRunner().invoke(cli, ["worker", app])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {message}")


def test_unreachable_backend_is_one_clear_line() -> None:
    """A backend that does not answer: exit 1 with one line naming it, no traceback."""
    result = CliRunner().invoke(
        cli, ["worker", "tests.cli.sample_app:hub", "--url", "redis://127.0.0.1:1/0"]
    )
    assert (result.exit_code, result.stderr) == (
        1,
        "error: cannot reach the backend at redis://127.0.0.1:1/0 (ConnectionError)\n",
    )


def test_a_bad_event_loop_is_one_line_and_exit_2() -> None:
    """HUB_SCHEDULER_EVENT_LOOP other than asyncio or uvloop: exit 2 with one line, before
    the backend is tried."""
    result = CliRunner().invoke(
        cli,
        ["worker", "tests.cli.sample_app:hub", "--url", "redis://127.0.0.1:1/0"],
        env={"HUB_SCHEDULER_EVENT_LOOP": "trio"},
    )
    assert (result.exit_code, result.stderr) == (
        2,
        "error: HUB_SCHEDULER_EVENT_LOOP must be asyncio or uvloop, got 'trio'\n",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("asyncio", "asyncio"), (" AsyncIO ", "asyncio"), ("uvloop", "uvloop"), ("", "uvloop")],
)
def test_the_engines_run_on_uvloop_once_installed(
    value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With uvloop installed (the speed extra) the engines run on it unless the variable
    says asyncio."""
    pytest.importorskip("uvloop")
    monkeypatch.setenv("HUB_SCHEDULER_EVENT_LOOP", value)

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__.partition(".")[0]

    assert run_engine(loop_module) == expected


@pytest.mark.redis
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_worker_process_runs_jobs_and_stops_cleanly_on_sigterm(
    redis_url: str, loop: str
) -> None:
    """A worker process runs an enqueued job, then exits 0 on SIGTERM, on either loop."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    prefix = f"hubtest-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "SAMPLE_PREFIX": prefix, "HUB_SCHEDULER_URL": redis_url,
           "HUB_SCHEDULER_EVENT_LOOP": loop}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub_scheduler", "worker", "tests.cli.sample_app:hub",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with Hub(redis_url, prefix=prefix) as hub:
        hub.job("record")(lambda _: None)  # registered so enqueue knows the name
        try:
            run_id = await hub.enqueue("record")
            ran = await redis_of(hub).blpop([f"{{{prefix}}}:test:ran"], timeout=20)
            assert ran is not None
            assert ran[1] == run_id.encode()
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        await drop_keys(hub)
