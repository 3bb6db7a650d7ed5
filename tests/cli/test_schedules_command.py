"""`hub-scheduler schedules preview` (next fire times with DST notes, no Redis needed) and
`schedules list`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub_scheduler import Cron, Hub, Schedule
from hub_scheduler.entrypoints.cli import cli
from tests.cli.conftest import SampleCli

PREVIEW = ["schedules", "preview", "30 2 * * *", "--tz", "Australia/Sydney"]


def test_preview_json_across_the_october_transition() -> None:
    """The issue's example prints the moved 03:00 slot first, as JSON with ISO 8601 times."""
    result = CliRunner().invoke(
        cli, [*PREVIEW, "--after", "2026-10-03T00:00:00Z", "-n", "5", "--json"]
    )
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [row["utc"] for row in rows] == [
        "2026-10-03T16:00:00Z",
        "2026-10-04T15:30:00Z",
        "2026-10-05T15:30:00Z",
        "2026-10-06T15:30:00Z",
        "2026-10-07T15:30:00Z",
    ]
    assert rows[0]["local"] == "2026-10-04T03:00:00+11:00"
    assert "skipped hour" in rows[0]["note"]
    assert [row["note"] for row in rows[1:]] == [None] * 4


def test_preview_table_marks_the_repeated_hour() -> None:
    """Without --json a readable table shows local times and the April note."""
    result = CliRunner().invoke(cli, [*PREVIEW, "--after", "2026-04-04T00:00:00Z", "-n", "2"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["UTC", "local", "(Australia/Sydney)", "note"]
    assert lines[1].startswith("2026-04-04 15:30:00Z  2026-04-05 02:30:00 AEDT")
    assert lines[1].endswith("first of a repeated hour (clocks go back); runs once")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedules", "preview", "*/0 * * * *"], "error: invalid cron expression '*/0 * * * *'"),
        (["schedules", "preview", "61 * * * *"], "bad minute field '61'"),
        (
            ["schedules", "preview", "0 8 * * *", "--tz", "Mars/Base"],
            "unknown time zone 'Mars/Base'",
        ),
    ],
)
def test_bad_expression_or_zone_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    """Bad input: exit 2, one line on stderr naming the problem, no traceback."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_scheduler_command_refuses_a_bad_app() -> None:
    """`hub-scheduler scheduler` shares the worker's APP checks."""
    result = CliRunner().invoke(cli, ["scheduler", "tests.cli.sample_app:not_a_hub"])
    assert result.exit_code == 2
    assert "must be a hub_scheduler.Hub, found int" in result.output


def test_schedules_list_says_which_schedules_code_owns(sample_cli: SampleCli) -> None:
    """`schedules list` shows each schedule's origin: code (declared on a job; pause only) or
    runtime (editable), and whether it is paused."""

    async def store(hub: Hub) -> None:
        now = hub.clock.now()
        declared = Schedule(Cron("0 2 * * *", "Australia/Sydney"), job="record", id="record:0")
        await hub.schedules.sync_declared([declared], now)
        await hub.schedules.set_paused("record:0", paused=True)
        await hub.schedules.create(Schedule(Cron("@hourly"), job="record", id="adhoc"), now)

    sample_cli.within(store)
    rows = json.loads(sample_cli("schedules", "list", "--json").stdout)
    assert [(r["id"], r["origin"], r["paused"]) for r in rows] == [
        ("adhoc", "runtime", False),
        ("record:0", "code", True),
    ]
    lines = sample_cli("schedules", "list").stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["adhoc", "runtime"], ["record:0", "code"]]
    assert lines[1].endswith("(paused)")
