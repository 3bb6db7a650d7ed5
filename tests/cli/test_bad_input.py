"""Bad input of every kind is one line on stderr and exit 2, never a traceback: apps that
fail to load, broken URLs, numbers that are not (nan, inf, huge), unknown options."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner, Result

from hub_scheduler.adapters.backends import known_schemes
from hub_scheduler.entrypoints.api.security import ROLES
from hub_scheduler.entrypoints.cli import cli
from hub_scheduler.entrypoints.cli.main import ROLE_NAMES
from tests.cli.conftest import APP

ENV = {"HUB_SCHEDULER_JWT_SECRET": "j" * 40, "HUB_SCHEDULER_URL": None,
       "HUB_SCHEDULER_REDIS_URL": None, "REDIS_URL": None, "REDIS_HOST": None}  # fmt: skip
MEMORY = ("--url", "memory://")
KNOWN = "known: " + ", ".join(f"{s}://" for s in known_schemes())


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=ENV)


@pytest.mark.parametrize(
    ("app", "line"),
    [
        ("raises", "cannot import 'hubcli_bad_raises': RuntimeError: boom"),
        ("syntax", "cannot import 'hubcli_bad_syntax': SyntaxError: invalid syntax "
                   "(hubcli_bad_syntax.py, line 1)"),
        ("scheme", f"cannot import 'hubcli_bad_scheme': unknown backend scheme 'foo'; {KNOWN}"),
        ("prefix", "cannot import 'hubcli_bad_prefix': ValueError: invalid key prefix "
                   "'bad prefix{}': 1-64 letters, digits, '_', '.', ':' or '-'"),
        ("twice", "cannot import 'hubcli_bad_twice': a job named 'a' is already registered"),
        ("exits", "cannot import 'hubcli_bad_exits': it exited (status 3)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["check", "worker", "scheduler", "serve"])
def test_an_app_that_cannot_load_is_one_line_and_exit_2(
    bad_apps: dict[str, str], app: str, line: str, command: str
) -> None:
    """Whatever the app does wrong on import, every command says so in one line."""
    where = ["--app", bad_apps[app]] if command == "check" else [bad_apps[app]]
    result = _invoke(command, *where, *MEMORY)
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"error: {line}\n", "")


@pytest.mark.parametrize("command", ["worker", "scheduler", "serve", "queue status"])
@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("foo://bar", f"unknown backend scheme 'foo'; {KNOWN}"),
        ("redis://:s3cret@127.0.0.1:notaport/0",
         "invalid backend URL: Port could not be cast to integer value as 'notaport'"),
        ("postgresql://app:s3cret@db:notaport/jobs",
         "invalid backend URL: the port must be a number from 1 to 65535"),
        ("postgresql://app:s3cret@[db/jobs",
         "invalid backend URL: not a PostgreSQL connection URL"),
        ("redis+cluster://:s3cret@h1:7000,h2:x",
         "invalid backend URL: each node must be host:port"),
    ],
)  # fmt: skip
def test_a_broken_url_is_one_line_on_every_command(command: str, url: str, line: str) -> None:
    """An unknown scheme or a bad port: exit 2, one line, the password nowhere."""
    where = ["--app", APP] if command == "queue status" else [APP]
    result = _invoke(*command.split(), *where, "--url", url)
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"error: {line}\n", "")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["worker", APP, "--lease", "nan"],
         "Invalid value for '--lease': 'nan' is not a finite number."),
        (["worker", APP, "--grace", "inf"],
         "Invalid value for '--grace': 'inf' is not a finite number."),
        (["scheduler", APP, "--lookahead", "61"],
         "Invalid value for '--lookahead': 61.0 is not in the range 0<=x<=60."),
        (["jobs", "trigger", "record", "--app", APP, "--delay", "nan"],
         "Invalid value for '--delay': 'nan' is not a finite number."),
        (["clean", "--app", APP, "--older-than-days", "nan"],
         "Invalid value for '--older-than-days': 'nan' is not a finite number."),
        (["clean", "--app", APP, "--older-than-days", "-inf"],
         "Invalid value for '--older-than-days': '-inf' is not a finite number."),
        (["clean", "--app", APP, "--older-than-days", "1e308"],
         "Invalid value for '--older-than-days': 1e+308 is not in the range 0<x<=3650."),
        (["token", "create", "--subject", "a", "--role", "SystemAdmin", "--ttl", "99999999999d"],
         "Invalid value for '--ttl': '99999999999d' is not a duration like 30m, 8h or 7d."),
        (["token", "create", "--subject", "a", "--role", "SystemAdmin", "--ttl", "366d"],
         "Invalid value for '--ttl': '366d' is not between 1s and 365d."),
        (["token", "create", "--subject", "a", "--role", "SystemAdmin", "--ttl", "0h"],
         "Invalid value for '--ttl': '0h' is not between 1s and 365d."),
    ],
)  # fmt: skip
def test_a_number_that_is_not_one_is_refused_in_one_line(args: list[str], line: str) -> None:
    """nan, inf, huge and zero values are usage errors naming the option, not tracebacks."""
    result = _invoke(*args, *MEMORY[: 2 if args[0] != "token" else 0])
    command = " ".join(a for a in args[:2] if a.isidentifier())
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {line} (see 'cli {command} --help')\n",
    )


def test_an_unknown_option_is_one_line() -> None:
    """A mistyped option is one line naming it and where the help is."""
    result = _invoke("jobs", "list", "--foo")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: No such option '--foo'. (see 'cli jobs list --help')\n",
    )


def test_the_role_choices_are_the_apis_roles() -> None:
    """`token create --role` offers exactly the roles the admin API checks."""
    assert ROLE_NAMES == ROLES


def test_serve_on_a_port_in_use_is_one_line() -> None:
    """A port another process listens on: one line naming it, exit 2, nothing served."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _invoke("serve", APP, *MEMORY, "--port", str(port))
    assert (result.exit_code, result.stderr, result.stdout) == (
        2,
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n",
        "",
    )
