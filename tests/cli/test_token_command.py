"""`hub-scheduler token create`: a signed admin token, or one clear error line."""

from __future__ import annotations

import time

import jwt
import pytest
from click.testing import CliRunner

from hub_scheduler.entrypoints.cli import cli

SECRET = "s" * 40


def test_token_carries_subject_role_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is signed with the configured secret and expires after the ttl."""
    monkeypatch.setenv("HUB_SCHEDULER_JWT_SECRET", SECRET)
    args = ["token", "create", "--subject", "alice", "--role", "JobViewer", "--ttl", "8h"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0
    claims = jwt.decode(result.output.strip(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["extras"]["roles"]) == ("alice", ["JobViewer"])
    assert abs(claims["exp"] - (time.time() + 8 * 3600)) < 60


def test_redis_deployment_without_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the in-memory demo, a missing secret is one error line and exit 2."""
    monkeypatch.setenv("HUB_SCHEDULER_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("HUB_SCHEDULER_JWT_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["token", "create", "--subject", "a", "--role", "SystemAdmin"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: set HUB_SCHEDULER_JWT_SECRET to at least 32")
    assert len(result.stderr.splitlines()) == 1


def test_memory_without_secret_is_refused_not_signed_with_a_throwaway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On memory:// a token signed with this command's own random secret would be refused
    by every server: one error line saying which secret to set, exit 2."""
    monkeypatch.setenv("HUB_SCHEDULER_URL", "memory://")
    monkeypatch.delenv("HUB_SCHEDULER_JWT_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["token", "create", "--subject", "a", "--role", "SystemAdmin"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: set HUB_SCHEDULER_JWT_SECRET to the server's secret")
    assert result.stdout == ""


@pytest.mark.parametrize(("option", "value"), [("--role", "Boss"), ("--ttl", "5y")])
def test_bad_role_or_ttl_is_a_usage_error(option: str, value: str) -> None:
    """An unknown role or unreadable ttl exits 2 naming the bad value."""
    args = ["token", "create", "--subject", "a", "--role", "SystemAdmin", option, value]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert repr(value) in result.output
