"""`hub-scheduler db migrate`: creates the app's schema, is idempotent, and is what the
"schema behind" error tells an operator to run."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub_scheduler import Hub
from hub_scheduler.adapters.postgres import schema
from hub_scheduler.entrypoints.cli import cli
from tests.postgres import cli_app

pytestmark = pytest.mark.postgres

APP = "tests.postgres.cli_app:hub"
ALL = [f"{m.version:04d}_{m.name}" for m in schema.migrations()]


def test_db_migrate_creates_the_schema_once(
    pg_url: str, pg_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `check` names the command; migrate applies every migration, then nothing."""
    monkeypatch.setattr(cli_app, "hub", Hub(prefix=pg_prefix))
    runner = CliRunner()
    before = runner.invoke(cli, ["check", "--app", APP, "--url", pg_url])
    assert before.exit_code == 1
    assert "hub-scheduler db migrate" in before.output
    first = runner.invoke(cli, ["db", "migrate", "--app", APP, "--url", pg_url, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["applied"] == ALL
    again = runner.invoke(cli, ["db", "migrate", "--app", APP, "--url", pg_url])
    assert (again.exit_code, again.stdout.strip().endswith("up to date")) == (0, True)
    after = runner.invoke(cli, ["check", "--app", APP, "--url", pg_url])
    assert after.exit_code == 0, after.output


def test_db_migrate_has_nothing_to_do_on_memory() -> None:
    """A backend without a schema (memory://, Redis) migrates to nothing, successfully."""
    result = CliRunner().invoke(cli, ["db", "migrate", "--app", APP, "--url", "memory://"])
    assert (result.exit_code, result.stdout.strip().endswith("up to date")) == (0, True)
