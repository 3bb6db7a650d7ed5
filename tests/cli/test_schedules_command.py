"""`hub-scheduler schedules preview`: next fire times with DST notes, no Redis needed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub_scheduler.entrypoints.cli import cli

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
