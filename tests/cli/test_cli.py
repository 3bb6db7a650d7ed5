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
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output
    assert "Traceback" not in result.output
