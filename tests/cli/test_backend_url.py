"""The backend URL: ``--url`` (alias ``--redis-url``), ``HUB_SCHEDULER_URL`` before
``HUB_SCHEDULER_REDIS_URL``; an unknown scheme or a broken URL is one line and exit 2, an
unreachable backend one line and exit 1, and no output ever shows the password."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from typing import Any, cast

import attrs
import fakeredis
import pytest
from click.testing import CliRunner, Result

from hub_scheduler.adapters.backends import known_schemes, register_backend, unregister_backend
from hub_scheduler.adapters.clock import SystemClock
from hub_scheduler.adapters.redis.backend import RedisBackend, open_redis_backend
from hub_scheduler.adapters.redis.connection import open_redis
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.ports import AuditEntry, BackendConfig, JobQueue
from hub_scheduler.entrypoints.cli import cli
from tests.cli import sample_app
from tests.cli.conftest import APP, SampleCli

SECRET = "s3cret"  # noqa: S105 - the password no output may show
DOWN = f"redis://:{SECRET}@127.0.0.1:1/0"
KNOWN = "known: " + ", ".join(f"{s}://" for s in known_schemes())
#: One command of each kind that opens a backend.
COMMANDS = [
    ("worker", APP),
    ("scheduler", APP),
    ("serve", APP),
    ("check", "--app", APP),
    ("jobs", "trigger", "record", "--app", APP),
    ("dlq", "purge", "--yes", "--app", APP),
]
ENV = {"HUB_SCHEDULER_JWT_SECRET": "j" * 40, "HUB_SCHEDULER_URL": None,
       "HUB_SCHEDULER_REDIS_URL": None}  # fmt: skip


def _invoke(
    args: tuple[str, ...], *more: str, env: Mapping[str, str | None] | None = None
) -> Result:
    return CliRunner().invoke(cli, [*args, *more], env={**ENV, **(env or {})})


def _history(sample_cli: SampleCli) -> list[str]:
    return [r["id"] for r in json.loads(sample_cli("history", "--json").stdout)]


@pytest.mark.redis
@pytest.mark.parametrize("option", ["--url", "--redis-url"])
def test_url_and_its_old_name_both_choose_the_backend(sample_cli: SampleCli, option: str) -> None:
    """`--url` and its alias `--redis-url` point the command at the same backend."""
    result = sample_cli.bare("jobs", "trigger", "record", option, sample_cli.url)
    assert result.exit_code == 0, result.output
    assert _history(sample_cli) == [result.stdout.strip()]


@pytest.mark.redis
@pytest.mark.parametrize(
    ("url_env", "redis_url_env"),
    [("test", None), (None, "test"), ("test", "redis://127.0.0.1:1/0")],
)
def test_the_environment_names_the_backend(
    sample_cli: SampleCli, url_env: str | None, redis_url_env: str | None
) -> None:
    """HUB_SCHEDULER_URL, else HUB_SCHEDULER_REDIS_URL; with both, HUB_SCHEDULER_URL wins."""
    env = {
        "HUB_SCHEDULER_URL": sample_cli.url if url_env == "test" else url_env,
        "HUB_SCHEDULER_REDIS_URL": sample_cli.url if redis_url_env == "test" else redis_url_env,
    }
    result = sample_cli.bare("jobs", "trigger", "record", env=env)
    assert result.exit_code == 0, result.output
    assert _history(sample_cli) == [result.stdout.strip()]


def test_the_old_variable_loses_to_the_new_one_even_when_it_is_the_good_one() -> None:
    """With both set, HUB_SCHEDULER_URL is used (here its unknown scheme is refused, naming
    the variable)."""
    env = {"HUB_SCHEDULER_URL": "nope://x", "HUB_SCHEDULER_REDIS_URL": "memory://"}
    result = _invoke(("check", "--app", APP), env=env)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: unknown backend scheme 'nope'; {KNOWN} (from HUB_SCHEDULER_URL)\n",
    )


def test_the_url_option_wins_over_the_environment() -> None:
    """An explicit --url is used whatever the environment says."""
    env = {"HUB_SCHEDULER_URL": "redis://127.0.0.1:1/0"}
    result = _invoke(("check", "--app", APP), "--url", "nope://x", env=env)
    assert result.stderr == f"error: unknown backend scheme 'nope'; {KNOWN}\n"


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nope://somewhere", f"unknown backend scheme 'nope'; {KNOWN}"),
        ("localhost:6379", f"a backend URL needs a scheme; {KNOWN}"),
        ("", "the backend URL is empty; give one such as redis://localhost:6379/0"),
    ],
)
def test_an_unknown_scheme_is_one_line_and_exit_2(
    args: tuple[str, ...], url: str, message: str
) -> None:
    """Every command that opens a backend refuses an unknown scheme, naming the known ones."""
    result = _invoke(args, "--url", url)
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"error: {message}\n", "")


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unreachable_backend_is_one_line_exit_1_without_the_password(
    args: tuple[str, ...],
) -> None:
    """A backend that does not answer: exit 1, one line with the URL masked."""
    result = _invoke(args, "--url", DOWN)
    assert (result.exit_code, result.stderr, result.stdout) == (
        1,
        "error: cannot reach the backend at redis://:***@127.0.0.1:1/0 (ConnectionError)\n",
        "",
    )


def test_check_never_prints_the_password() -> None:
    """`hub-scheduler check --url redis://:s3cret@127.0.0.1:1/0` keeps the secret."""
    result = CliRunner().invoke(cli, ["check", "--app", APP, "--url", DOWN])
    assert result.exit_code == 1
    assert SECRET not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"redis://:{SECRET}@127.0.0.1:port/0",
         "Port could not be cast to integer value as 'port'"),
        (f"redis://:{SECRET}@[::1/0", "Invalid IPv6 URL"),
        (f"redis://:{SECRET}@127.0.0.1:6379/0?socket_timeout=x",
         "Invalid value for 'socket_timeout' in connection URL."),
    ],
)  # fmt: skip
def test_a_broken_url_is_one_line_exit_2_without_the_password(url: str, message: str) -> None:
    """A URL the backend cannot parse: exit 2, one line with the reason, no password."""
    result = _invoke(("check", "--app", APP), "--url", url)
    assert (result.exit_code, result.stderr) == (2, f"error: invalid backend URL: {message}\n")
    assert SECRET not in result.output


@attrs.define
class _PauseFails:
    """A job queue whose `pause` fails as a backend lost mid-command does."""

    inner: JobQueue

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def pause(self, job: str | None = None) -> None:  # noqa: ARG002 - the port's signature
        raise BackendUnavailableError("pause", "ConnectionError")


@pytest.fixture
def flaky_server() -> Iterator[fakeredis.FakeServer]:
    """``flaky://``: memory backends on one server, whose queue cannot pause."""
    server = fakeredis.FakeServer()

    def open_flaky(url: str, config: BackendConfig) -> RedisBackend:
        backend = RedisBackend.on_client(open_redis("memory://", server=server), url, config)
        backend.queue = cast("Any", _PauseFails(backend.queue))
        return backend

    register_backend("flaky", open_flaky)
    yield server
    unregister_backend("flaky")


def test_a_backend_lost_mid_command_is_one_line_and_exit_1(
    flaky_server: fakeredis.FakeServer,
) -> None:
    """The backend answers, then fails the action: exit 1, one line, the failure audited."""
    result = CliRunner().invoke(
        cli, ["queue", "pause", "--app", APP, "--url", "flaky://", "--actor", "ops-alice"]
    )
    assert (result.exit_code, result.stderr) == (
        1,
        "error: the backend at flaky:// failed: pause failed: store unavailable "
        "(ConnectionError)\n",
    )

    async def entries() -> list[AuditEntry]:
        config = BackendConfig(SystemClock(), sample_app.hub.prefix)
        backend = open_redis_backend("memory://", config, server=flaky_server)
        try:
            return list((await backend.audit.list()).items)
        finally:
            await backend.aclose()

    [entry] = asyncio.run(entries())
    assert (entry.action, entry.outcome, entry.channel, entry.actor, entry.detail) == (
        "queue.pause",
        "failed",
        "cli",
        "ops-alice",
        "pause failed: store unavailable (ConnectionError)",
    )
