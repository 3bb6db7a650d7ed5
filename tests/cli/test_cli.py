"""The `hub-scheduler` console script."""

from __future__ import annotations

from click.testing import CliRunner

from hub_scheduler import __version__
from hub_scheduler.entrypoints.cli import cli


def test_version_prints_the_package_version() -> None:
    """`hub-scheduler --version` names the program and its version."""
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"hub-scheduler, version {__version__}"


def test_help_describes_the_tool() -> None:
    """`hub-scheduler --help` exits 0 and says what the tool is for."""
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "run, inspect and steer background jobs" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    """An unknown command exits 2 with a one-line reason, not a traceback."""
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: No such command 'frobnicate'. (see 'cli --help')\n",
    )


def test_a_bad_option_value_is_one_line_with_a_pointer_to_help() -> None:
    """Click's own usage errors are one line too, naming the command's help."""
    result = CliRunner().invoke(cli, ["history", "--limit", "0"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: Invalid value for '--limit': 0 is not in the range 1<=x<=500."
        " (see 'cli history --help')\n"
    )


def test_a_group_without_a_command_names_its_commands() -> None:
    """`hub-scheduler dlq` is one line listing the dead-letter commands, and exit 2."""
    result = CliRunner().invoke(cli, ["dlq"])
    assert (result.exit_code, result.stderr, result.stdout) == (
        2,
        "error: give a command: delete, list, purge, retry (see 'cli dlq --help')\n",
        "",
    )
