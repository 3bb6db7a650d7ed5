"""Operator commands against a real Redis: jobs, queue, dlq, schedules, history, clean, check."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result

from hub_scheduler import Hub
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Failed
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.entrypoints.cli import cli
from tests.cli import sample_app
from tests.conftest import drop_keys

APP = "tests.cli.sample_app:hub"
Invoke = Callable[..., Result]


@pytest.fixture
def cmd(redis_url: str) -> Iterator[Invoke]:
    """Run `hub-scheduler ...` against the sample app on the test Redis; clean up after."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--app", APP, "--redis-url", redis_url])

    yield invoke

    async def clean() -> None:
        async with Hub(redis_url, prefix=sample_app.hub.prefix) as hub:
            await drop_keys(hub)

    asyncio.run(clean())


def _kill_one(redis_url: str) -> str:
    """Put one dead letter in the sample app's queue; returns its run id."""

    async def go() -> str:
        async with Hub(redis_url, prefix=sample_app.hub.prefix) as hub:
            hub.job("record")(lambda _: None)
            run_id = await hub.enqueue("record")
            [claim] = await hub.queue.claim("w", 1, timedelta(seconds=30))
            await hub.queue.finish(claim, Failed(ErrorInfo("ValueError", "broken"), GiveUp(1)))
            return run_id

    return asyncio.run(go())


@pytest.mark.redis
def test_trigger_then_history_and_show(cmd: Invoke) -> None:
    """`jobs trigger` prints a run id that `history` and `jobs show` then list."""
    invoke = cmd
    triggered = invoke("jobs", "trigger", "record", "--payload", '{"n": 1}', "--priority", "high")
    assert triggered.exit_code == 0, triggered.output
    run_id = triggered.output.strip()
    history = json.loads(invoke("history", "--json").output)
    assert [(r["id"], r["priority"], r["payload"]) for r in history] == [(run_id, 5, {"n": 1})]
    shown = invoke("jobs", "show", "record").output
    assert run_id in shown


@pytest.mark.redis
def test_pause_and_resume_job_and_queue(cmd: Invoke) -> None:
    """Pausing shows in `jobs list` and `queue status`; resuming clears it."""
    invoke = cmd
    assert invoke("jobs", "pause", "record").exit_code == 0
    [row] = json.loads(invoke("jobs", "list", "--json").output)
    assert (row["name"], row["paused"]) == ("record", True)
    assert invoke("queue", "pause").exit_code == 0
    status = json.loads(invoke("queue", "status", "--json").output)
    assert (status["paused"], status["paused_jobs"]) == (True, ["record"])
    assert invoke("queue", "resume").exit_code == 0
    assert invoke("jobs", "resume", "record").exit_code == 0
    status = json.loads(invoke("queue", "status", "--json").output)
    assert (status["paused"], status["paused_jobs"]) == (False, [])


@pytest.mark.redis
def test_dead_letters_list_retry_purge(cmd: Invoke, redis_url: str) -> None:
    """`dlq list` shows the error; `dlq retry` requeues; `dlq purge --yes` empties it."""
    invoke = cmd
    dead_id = _kill_one(redis_url)
    listed = invoke("dlq", "list")
    assert dead_id in listed.output
    assert "broken" in listed.output
    retried = invoke("dlq", "retry", dead_id, "--json")
    assert len(json.loads(retried.output)) == 1
    _kill_one(redis_url)
    purged = json.loads(invoke("dlq", "purge", "--yes", "--json").output)
    assert purged == {"removed": 1}


@pytest.mark.redis
def test_clean_check_and_schedules(cmd: Invoke) -> None:
    """`clean` reports what it removed, `check` exits 0, `schedules list` runs."""
    invoke = cmd
    assert json.loads(invoke("clean", "--older-than-days", "1", "--json").output) == {"removed": 0}
    checked = invoke("check")
    assert (checked.exit_code, checked.output.startswith("ok:")) == (0, True)
    assert invoke("schedules", "list", "--json").exit_code == 0


@pytest.mark.redis
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("jobs", "trigger", "nope"), "job 'nope' not found"),
        (("jobs", "trigger", "record", "--payload", "[1]"), "must be a JSON object"),
        (("dlq", "purge"), "add --yes to confirm"),
        (("dlq", "retry"), "give a RUN_ID or --all"),
        (("history", "--job", "nope"), "job 'nope' not found"),
    ],
)
def test_bad_input_exits_2_with_one_clear_reason(
    cmd: Invoke, args: tuple[str, ...], message: str
) -> None:
    """Bad input: exit 2 and the reason, no traceback."""
    result = cmd(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_check_fails_when_redis_is_down() -> None:
    """`check` is a probe: exit 1 and one line when Redis does not answer."""
    result = CliRunner().invoke(
        cli, ["check", "--app", APP, "--redis-url", "redis://127.0.0.1:1/0"]
    )
    assert result.exit_code == 1
    assert "cannot reach redis://127.0.0.1:1/0" in result.output
