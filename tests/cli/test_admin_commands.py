"""Operator commands against a real Redis: jobs, queue, cancel, dlq, schedules, history, clean,
check."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub_scheduler import Hub, chain
from hub_scheduler.domain.model import Progress
from hub_scheduler.entrypoints.cli import cli
from tests.cli.conftest import APP, SampleCli

pytestmark = pytest.mark.redis


def test_trigger_then_history_and_show(sample_cli: SampleCli) -> None:
    """`jobs trigger` prints a run id that `history` and `jobs show` then list."""
    triggered = sample_cli(
        "jobs", "trigger", "record", "--payload", '{"n": 1}', "--priority", "high"
    )
    assert triggered.exit_code == 0, triggered.output
    run_id = triggered.stdout.strip()
    history = json.loads(sample_cli("history", "--json").stdout)
    assert [(r["id"], r["priority"], r["payload"]) for r in history] == [(run_id, 5, {"n": 1})]
    shown = json.loads(sample_cli("jobs", "show", "record", "--json").stdout)
    assert [r["id"] for r in shown["recent_runs"]] == [run_id]
    assert shown["last_run"]["id"] == run_id
    assert run_id in sample_cli("jobs", "show", "record").stdout


def test_runs_show_prints_every_attempt_with_its_error(sample_cli: SampleCli) -> None:
    """`runs show` prints a dead run's attempt with its outcome, worker and error; with
    --json it is the API's run shape."""
    run_id = sample_cli.kill_one()
    shown = sample_cli("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"run {run_id}: record dead, attempt 1, stalls 0"
    assert lines[3].split()[:2] == ["1", "gave_up"]
    assert lines[4] == "    ValueError: broken"
    [attempt] = json.loads(sample_cli("runs", "show", run_id, "--json").stdout)["attempts"]
    assert (attempt["outcome"], attempt["worker"]) == ("gave_up", "w")


def test_runs_show_prints_progress_and_the_result(sample_cli: SampleCli) -> None:
    """What a handler reported (``ctx.progress``) and returned is in `runs show`, as text
    and in the API's JSON shape."""
    run_id = sample_cli.enqueue()

    async def report(hub: Hub) -> None:
        now = hub.clock.now()
        await hub.backend.results.set_progress(run_id, Progress(now, 0.5, "half way"))
        await hub.backend.results.set_result(run_id, {"rows": 3})

    sample_cli.within(report)
    lines = sample_cli("runs", "show", run_id).stdout.splitlines()
    assert lines[2].startswith("progress 50% half way (at ")
    assert lines[3] == 'result {"rows": 3}'
    shown = json.loads(sample_cli("runs", "show", run_id, "--json").stdout)
    assert (shown["result"], shown["progress"]["message"]) == ({"rows": 3}, "half way")


def test_trigger_with_an_idempotency_key_enqueues_once(sample_cli: SampleCli) -> None:
    """Two triggers with one `--idempotency-key` print the same run id."""
    args = ("jobs", "trigger", "record", "--idempotency-key", "once")
    first, second = sample_cli(*args), sample_cli(*args)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert first.stdout == second.stdout


def test_jobs_list_is_the_admin_job_summary(sample_cli: SampleCli) -> None:
    """`jobs list --json` shows each job as the admin API summarises it."""
    run_id = sample_cli.enqueue()
    [row] = json.loads(sample_cli("jobs", "list", "--json").stdout)
    assert {k: v for k, v in row.items() if k != "last_run"} == {
        "name": "record",
        "description": "Push the run id onto a list the test waits on.",
        "priority": "normal",
        "timeout_seconds": 30.0,
        "max_retries": 3,
        "paused": False,
        "schedules": [],
        "last_24h": {"succeeded": 0, "failed": 0, "dead": 0},
    }
    assert (row["last_run"]["id"], row["last_run"]["state"]) == (run_id, "queued")


def test_pause_and_resume_job_and_queue(sample_cli: SampleCli) -> None:
    """Pausing shows in `jobs list` and `queue status`; resuming clears it."""
    assert sample_cli("jobs", "pause", "record").stdout == "record: paused\n"
    [row] = json.loads(sample_cli("jobs", "list", "--json").stdout)
    assert (row["name"], row["paused"]) == ("record", True)
    assert sample_cli("queue", "pause").stdout == "queue paused\n"
    status = json.loads(sample_cli("queue", "status", "--json").stdout)
    assert (status["paused"], status["paused_jobs"], status["status"]) == (
        True,
        ["record"],
        "degraded",
    )
    assert sample_cli("queue", "resume").exit_code == 0
    assert sample_cli("jobs", "resume", "record").exit_code == 0
    status = json.loads(sample_cli("queue", "status", "--json").stdout)
    assert (status["paused"], status["paused_jobs"]) == (False, [])


def test_queue_status_reports_health_with_workers_and_schedulers(sample_cli: SampleCli) -> None:
    """`queue status` is the queue's health: counts, pause flags, live processes, status."""
    sample_cli.enqueue()
    status = json.loads(sample_cli("queue", "status", "--json").stdout)
    assert (status["waiting"], status["depth"]["normal"]) == (1, 1)
    assert (status["workers"], status["schedulers"], status["status"]) == ([], [], "degraded")
    assert sample_cli("queue", "status").stdout.splitlines()[0] == "status: degraded"


def test_cancel_a_waiting_run(sample_cli: SampleCli) -> None:
    """`cancel RUN_ID` cancels a queued run; history then shows it cancelled."""
    run_id = sample_cli.enqueue()
    result = sample_cli("cancel", run_id)
    assert (result.exit_code, result.stdout) == (0, f"{run_id}: cancelled\n")
    [run] = json.loads(sample_cli("history", "--json").stdout)
    assert (run["id"], run["state"]) == (run_id, "cancelled")


def test_cancel_a_running_run_requests_it(sample_cli: SampleCli) -> None:
    """`cancel` of a running run asks it to stop: exit 0, one line saying so."""
    run_id = sample_cli.start_one()
    result = sample_cli("cancel", run_id)
    assert (result.exit_code, result.stdout) == (
        0,
        f"{run_id}: cancel requested (running; it stops within its worker's grace)\n",
    )


@pytest.mark.parametrize("state", ["dead", "unknown"])
def test_cancel_of_a_finished_or_unknown_run_is_one_line_and_exit_2(
    sample_cli: SampleCli, state: str
) -> None:
    """A finished run cannot be cancelled: exit 2, one line saying why."""
    run_id = sample_cli.kill_one() if state == "dead" else "no-such-run"
    result = sample_cli("cancel", run_id)
    expected = {
        "dead": f"error: run {run_id} cannot go from 'dead' to 'cancelled'\n",
        "unknown": "error: run 'no-such-run' not found\n",
    }
    assert (result.exit_code, result.stderr, result.stdout) == (2, expected[state], "")


def test_dead_letters_list_retry_delete_purge(sample_cli: SampleCli) -> None:
    """`dlq list` shows the error; `retry` requeues; `delete` forgets one; `purge --yes` all."""
    dead_id = sample_cli.kill_one()
    listed = sample_cli("dlq", "list").stdout
    assert dead_id in listed
    assert "broken" in listed
    assert len(json.loads(sample_cli("dlq", "retry", dead_id, "--json").stdout)) == 1
    doomed = sample_cli.kill_one()
    assert sample_cli("dlq", "delete", doomed).stdout == f"deleted {doomed}\n"
    assert json.loads(sample_cli("dlq", "list", "--json").stdout) == []
    sample_cli.kill_one()
    assert json.loads(sample_cli("dlq", "purge", "--yes", "--json").stdout) == {"removed": 1}


def test_clean_check_and_schedules(sample_cli: SampleCli) -> None:
    """`clean` reports what it removed, `check` exits 0 and says degraded (no worker),
    `schedules list` runs."""
    cleaned = sample_cli("clean", "--older-than-days", "1", "--state", "dead", "--json")
    assert json.loads(cleaned.stdout) == {"removed": 0}
    checked = sample_cli("check")
    assert (checked.exit_code, checked.stdout) == (
        0,
        "degraded: 0 workers, 0 schedulers, 0 dead letters\n",
    )
    assert json.loads(sample_cli("check", "--json").stdout) == {
        "status": "degraded",
        "workers": 0,
        "schedulers": 0,
        "paused": False,
        "dead_letters": 0,
    }
    assert json.loads(sample_cli("schedules", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("jobs", "trigger", "nope"), "error: job 'nope' not found"),
        (
            ("jobs", "trigger", "record", "--payload", "[1]"),
            "error: Invalid value for --payload: must be a JSON object",
        ),
        (("jobs", "pause", "nope"), "error: job 'nope' not found"),
        (("jobs", "show", "nope"), "error: job 'nope' not found"),
        (("dlq", "purge"), "error: purging forgets every dead letter; add --yes to confirm"),
        (("dlq", "retry"), "error: give a RUN_ID or --all"),
        (("dlq", "retry", "nope"), "error: dead letter 'nope' not found"),
        (("dlq", "delete", "nope"), "error: dead letter 'nope' not found"),
        (("history", "--job", "nope"), "error: job 'nope' not found"),
        (("clean", "--older-than-days", "0"), "error: Invalid value for '--older-than-days'"),
        (("jobs", "trigger", "record", "--actor", " "), "error: Invalid value for '--actor'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    sample_cli: SampleCli, args: tuple[str, ...], message: str
) -> None:
    """Bad input: exit 2 and one line on stderr giving the reason, nothing on stdout."""
    result = sample_cli(*args)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message)
    assert result.stdout == ""


def test_check_fails_when_the_backend_is_down() -> None:
    """`check` is a probe: exit 1 and one line naming the backend when it does not answer."""
    result = CliRunner().invoke(cli, ["check", "--app", APP, "--url", "redis://127.0.0.1:1/0"])
    assert (result.exit_code, result.stderr) == (
        1,
        "error: cannot reach the backend at redis://127.0.0.1:1/0 (ConnectionError)\n",
    )


def test_read_commands_leave_no_audit_entry(sample_cli: SampleCli) -> None:
    """Reading (list, show, status, history, check) is not an admin action."""
    for args in (("jobs", "list"), ("jobs", "show", "record"), ("queue", "status"),
                 ("history",), ("dlq", "list"), ("check",), ("schedules", "list")):  # fmt: skip
        assert sample_cli(*args).exit_code == 0, args
    assert sample_cli.audit() == []


def test_the_default_app_is_the_demo() -> None:
    """Without --app the operator commands speak for the demo's 11 jobs."""
    result = CliRunner().invoke(
        cli, ["jobs", "list", "--json", "--url", "memory://"], env={"HUB_SCHEDULER_APP": None}
    )
    assert len(json.loads(result.stdout)) == 11


def test_runs_bulk_counts_first_then_acts_with_yes(sample_cli: SampleCli) -> None:
    """`runs bulk cancel --job record` says how many it would cancel and changes nothing;
    with --yes it cancels them, one audit entry for all."""
    ids = [sample_cli.enqueue() for _ in range(3)]
    preview = sample_cli("runs", "bulk", "cancel", "--job", "record")
    assert (preview.exit_code, preview.stdout) == (
        0,
        "would cancel 3 runs; pass --yes to do it\n",
    )
    assert {r["state"] for r in json.loads(sample_cli("history", "--json").stdout)} == {"queued"}
    done = sample_cli("runs", "bulk", "cancel", "--job", "record", "--yes", "--actor", "ops")
    assert (done.exit_code, done.stdout) == (0, "cancel: 3 runs\n")
    states = {r["id"]: r["state"] for r in json.loads(sample_cli("history", "--json").stdout)}
    assert states == dict.fromkeys(ids, "cancelled")
    assert sample_cli.audit()[-1][:3] == ("runs.cancel", "runs", "ok")


def test_runs_bulk_refuses_an_unknown_job_in_one_line(sample_cli: SampleCli) -> None:
    """An unknown job is exit 2 and one line on stderr."""
    result = sample_cli("runs", "bulk", "retry", "--job", "nope", "--yes")
    assert (result.exit_code, result.stderr) == (2, "error: job 'nope' not found\n")


def test_workflows_list_show_and_cancel(sample_cli: SampleCli) -> None:
    """`workflows list` and `show` print a workflow's steps (and the API's JSON with --json);
    `workflows cancel` cancels it, audited; an unknown id is one line on stderr, exit 2."""

    async def start(hub: Hub) -> str:
        return (await hub.start_workflow(chain("record", "record"), name="twice")).id

    workflow_id = sample_cli.within(start)
    listed = sample_cli("workflows", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[1].split()[:3] == [workflow_id, "twice", "running"]
    shown = sample_cli("workflows", "show", workflow_id).stdout.splitlines()
    assert shown[0] == f"workflow {workflow_id} (twice): running, on failure fail"
    assert shown[3].split()[:3] == ["record", "record", "waiting"]
    assert shown[4].split()[:4] == ["record#2", "record", "blocked", "-"]
    cancelled = json.loads(sample_cli("workflows", "cancel", workflow_id, "--json").stdout)
    assert cancelled["state"] == "cancelled"
    assert [s["state"] for s in cancelled["steps"]] == ["waiting", "skipped"]
    assert cancelled["steps"][0]["run"]["state"] == "cancelled"
    assert ("workflow.cancel", workflow_id, "ok") in [a[:3] for a in sample_cli.audit()]
    missing = sample_cli("workflows", "show", "wf_0123456789abcdef")
    assert (missing.exit_code, missing.stdout) == (2, "")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "wf_0123456789abcdef" in missing.stderr
