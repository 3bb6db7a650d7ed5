"""Where the backend comes from: ``--url``, then HUB_SCHEDULER_URL, HUB_SCHEDULER_REDIS_URL,
the seed's REDIS_URL and REDIS_HOST/PORT/PASSWORD/DB — the same order for `Hub()` and the CLI —
and no silent fall-back to a private memory:// store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result

from hub_scheduler import Hub
from hub_scheduler.entrypoints.cli import cli
from hub_scheduler.entrypoints.settings import Settings
from tests.cli.conftest import APP, SampleCli

VARIABLES = ("HUB_SCHEDULER_URL", "HUB_SCHEDULER_REDIS_URL", "REDIS_URL", "REDIS_HOST",
             "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB")  # fmt: skip
#: No backend named anywhere in the environment.
CLEAN: dict[str, str | None] = dict.fromkeys(VARIABLES)
REFUSED = (
    "error: no backend given, and memory:// is private to this process: pass --url "
    "redis://HOST:6379/0 (or set HUB_SCHEDULER_URL or REDIS_URL), or --url memory:// to use "
    "it anyway\n"
)


def _trigger(sample_cli: SampleCli, env: Mapping[str, str | None]) -> Result:
    return sample_cli.bare("jobs", "trigger", "record", "--json", env={**CLEAN, **env})


def _runs(sample_cli: SampleCli) -> list[str]:
    return [r["id"] for r in json.loads(sample_cli("history", "--json").stdout)]


def _parts(url: str) -> dict[str, str | None]:
    parts = urlsplit(url)
    return {"REDIS_HOST": parts.hostname, "REDIS_PORT": str(parts.port or 6379),
            "REDIS_DB": parts.path.strip("/") or "0"}  # fmt: skip


@pytest.mark.redis
@pytest.mark.parametrize(
    "variables",
    ["REDIS_URL", "REDIS_HOST/PORT/DB", "REDIS_URL over REDIS_HOST"],
)
def test_the_seeds_variables_name_the_backend_in_order(
    sample_cli: SampleCli, variables: str
) -> None:
    """With the seed's .env (REDIS_URL or REDIS_HOST/PORT/DB) the CLI works on that Redis;
    REDIS_URL wins over the parts (the whole order: tests/unit/test_urls.py)."""
    choices: dict[str, Mapping[str, str | None]] = {
        "REDIS_URL": {"REDIS_URL": sample_cli.url},
        "REDIS_HOST/PORT/DB": _parts(sample_cli.url),
        "REDIS_URL over REDIS_HOST": {"REDIS_URL": sample_cli.url, "REDIS_HOST": "127.0.0.1",
                                      "REDIS_PORT": "1"},
    }  # fmt: skip
    result = _trigger(sample_cli, choices[variables])
    assert result.exit_code == 0, result.output
    assert _runs(sample_cli) == [json.loads(result.stdout)["run_id"]]


def test_an_unreachable_seed_url_is_named_without_its_password() -> None:
    """REDIS_HOST/PORT/PASSWORD that do not answer: exit 1, the URL built from them, masked."""
    env = {**CLEAN, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1", "REDIS_PASSWORD": "s3cret"}
    result = CliRunner().invoke(cli, ["check", "--app", APP], env=env)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: cannot reach the backend at redis://:***@127.0.0.1:1/0 (ConnectionError)\n",
    )


def test_a_seed_port_that_is_not_a_number_is_one_line() -> None:
    """REDIS_PORT=abc is refused before anything is opened, naming the variable."""
    env = {**CLEAN, "REDIS_HOST": "cache", "REDIS_PORT": "abc"}
    result = CliRunner().invoke(cli, ["check", "--app", APP], env=env)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: REDIS_PORT must be a number, got 'abc'\n",
    )


@pytest.mark.parametrize(
    "args",
    [("check", "--app", APP), ("worker", APP), ("scheduler", APP), ("jobs", "list")],
    ids=" ".join,
)
def test_no_backend_anywhere_is_refused_not_run_in_memory(args: tuple[str, ...]) -> None:
    """Without --url or a variable, worker, scheduler and check refuse to start on a private
    memory:// store: one line saying why and how, exit 2."""
    result = CliRunner().invoke(cli, list(args), env=CLEAN)
    assert (result.exit_code, result.stderr, result.stdout) == (2, REFUSED, "")


@pytest.mark.parametrize(
    ("more", "env"),
    [(["--url", "memory://"], {}), ([], {"HUB_SCHEDULER_URL": "memory://"})],
    ids=["--url memory://", "HUB_SCHEDULER_URL=memory://"],
)
def test_memory_asked_for_is_used(more: list[str], env: dict[str, str]) -> None:
    """memory:// named explicitly (option or variable) is used, without a warning."""
    result = CliRunner().invoke(cli, ["check", "--app", APP, *more], env={**CLEAN, **env})
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith("degraded: 0 workers")


def test_the_library_reads_the_same_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Hub()` and the API's settings find the seed's REDIS_* variables as the CLI does."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_HOST", "cache")
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("REDIS_DB", "2")
    assert Hub().url == "redis://:***@cache:6379/2"
    assert Settings().url == "redis://:s3cret@cache:6379/2"
    monkeypatch.setenv("HUB_SCHEDULER_REDIS_URL", "redis://other:6379/0")
    assert (Hub().url, Settings().url) == ("redis://other:6379/0", "redis://other:6379/0")
