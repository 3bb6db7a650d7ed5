"""Every CLI action goes through the admin service: one audit entry each, channel ``cli``,
the same action names as the API's, the actor from ``--actor`` (or the OS user)."""

from __future__ import annotations

import getpass
from collections.abc import Callable

import pytest

from tests.cli.conftest import SampleCli

pytestmark = pytest.mark.redis

ALICE = "ops-alice"


@pytest.mark.parametrize(
    ("args", "action", "target"),
    [
        (("jobs", "trigger", "record"), "job.trigger", "record"),
        (("jobs", "pause", "record"), "job.pause", "record"),
        (("jobs", "resume", "record"), "job.resume", "record"),
        (("queue", "pause"), "queue.pause", "queue"),
        (("queue", "resume"), "queue.resume", "queue"),
        (("dlq", "retry", "--all"), "dlq.retry_all", "dlq"),
        (("dlq", "purge", "--yes"), "dlq.purge", "dlq"),
        (("clean", "--older-than-days", "1"), "history.clean", "history"),
    ],
)
def test_each_action_writes_one_audit_entry(
    sample_cli: SampleCli, args: tuple[str, ...], action: str, target: str
) -> None:
    """An action done from the CLI is audited once, as done by --actor through the CLI."""
    result = sample_cli(*args, "--actor", ALICE)
    assert result.exit_code == 0, result.output
    assert sample_cli.audit() == [(action, target, "ok", "cli", ALICE, ())]


@pytest.mark.parametrize(
    ("command", "prepare", "action"),
    [
        ("cancel", SampleCli.enqueue, "run.cancel"),
        ("dlq retry", SampleCli.kill_one, "dlq.retry"),
        ("dlq delete", SampleCli.kill_one, "dlq.delete"),
    ],
)
def test_actions_on_one_run_are_audited_with_its_id(
    sample_cli: SampleCli, command: str, prepare: Callable[[SampleCli], str], action: str
) -> None:
    """Cancelling a run, retrying or deleting a dead letter: the entry names the run."""
    run_id = prepare(sample_cli)
    result = sample_cli(*command.split(), run_id, "--actor", ALICE)
    assert result.exit_code == 0, result.output
    assert sample_cli.audit() == [(action, run_id, "ok", "cli", ALICE, ())]


def test_a_refused_action_is_audited_as_failed(sample_cli: SampleCli) -> None:
    """Cancelling a dead run fails (exit 2) and the attempt is audited as failed."""
    run_id = sample_cli.kill_one()
    assert sample_cli("cancel", run_id, "--actor", ALICE).exit_code == 2
    assert sample_cli("jobs", "trigger", "nope", "--actor", ALICE).exit_code == 2
    assert sample_cli.audit() == [
        ("run.cancel", run_id, "failed", "cli", ALICE, ()),
        ("job.trigger", "nope", "failed", "cli", ALICE, ()),
    ]


def test_the_actor_defaults_to_the_os_user(sample_cli: SampleCli) -> None:
    """Without --actor or HUB_SCHEDULER_ACTOR the entry names the OS user."""
    env = {"LOGNAME": "ops-carol", "HUB_SCHEDULER_ACTOR": None}
    assert sample_cli("queue", "pause", env=env).exit_code == 0
    assert sample_cli.audit() == [("queue.pause", "queue", "ok", "cli", "ops-carol", ())]


def test_the_actor_comes_from_the_environment(sample_cli: SampleCli) -> None:
    """HUB_SCHEDULER_ACTOR names the actor; --actor overrides it."""
    env = {"HUB_SCHEDULER_ACTOR": "deploy-bot"}
    assert sample_cli("queue", "pause", env=env).exit_code == 0
    assert sample_cli("queue", "resume", "--actor", ALICE, env=env).exit_code == 0
    assert sample_cli.audit() == [
        ("queue.pause", "queue", "ok", "cli", "deploy-bot", ()),
        ("queue.resume", "queue", "ok", "cli", ALICE, ()),
    ]


def test_an_os_without_a_user_name_acts_as_unknown(
    sample_cli: SampleCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the OS cannot name the user (a container without one), the actor is 'unknown'."""

    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert sample_cli("queue", "pause", env={"HUB_SCHEDULER_ACTOR": None}).exit_code == 0
    assert sample_cli.audit() == [("queue.pause", "queue", "ok", "cli", "unknown", ())]
