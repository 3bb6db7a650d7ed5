"""Random argument vectors for every command: whatever is typed, the answer is exit 0, 1 or 2,
no traceback, at most one stderr line on failure, and never the password of a URL given.

The commands are found by walking the click tree, so a new command is fuzzed without a new
line here. Commands that would run until stopped (worker, scheduler, serve) only ever get
unreachable or broken backends, so each vector ends early.
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub_scheduler.entrypoints.cli import cli

SECRET = "s3cret-XYZ"  # noqa: S105 - the password no output may show
DOWN = f"redis://:{SECRET}@127.0.0.1:1/0"
URLS = [
    "memory://", "foo://bar", "localhost:6379", "", DOWN,
    f"redis://:{SECRET}@127.0.0.1:notaport/0", f"redis://:{SECRET}@[::1/0",
    f"rediss://user:{SECRET}@127.0.0.1:1", f"redis://127.0.0.1:1/0?password={SECRET}",
    f"redis://u:{SECRET}@127.0.0.1:1/0?socket_timeout=x",
    f"postgresql://app:{SECRET}@127.0.0.1:1/jobs",
]  # fmt: skip
APPS = ["tests.cli.sample_app:hub", "tests.cli.sample_app:not_a_hub", "tests.cli.sample_app:",
        "no_colon", "nowhere.at.all:hub", ":", "hub_scheduler.demo:hub", "os:path"]  # fmt: skip
JUNK = ["nan", "inf", "-inf", "-1", "0", "1", "5", "1e308", "99999999999d", "8h", "0m", " ",
        "--", "-", "{}", "[]", '{"to": "ada"}', "x" * 300, "high", "dead", "SystemAdmin",
        "Australia/Sydney", "Mars/Base", "*/0 * * * *", "30 2 * * *", "2026-10-03T00:00:00Z",
        "record", "3f2a9c0d1e4b5a67", "--help", "--foo", "-n", "--json", "\x00", "é"]  # fmt: skip
#: Commands that run until stopped when their backend answers.
LONG_RUNNING = {"worker", "scheduler", "serve"}


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[click.Command]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            command.meta_path = (*path, name)  # type: ignore[attr-defined]
            yield command


LEAVES = list(_leaves(cli))


#: Plausible values by parameter name, so that vectors also get past the parsing.
GOOD = {
    "app": ["tests.cli.sample_app:hub"] * 3 + APPS, "url": ["memory://"] * 3 + URLS,
    "name": ["record", "nope"], "run_id": ["3f2a9c0d1e4b5a67"], "expression": ["30 2 * * *"],
    "subject": ["alice"], "role": ["SystemAdmin", "JobViewer"], "older_than_days": ["1", "nan"],
}  # fmt: skip


def _vector(command: click.Command, bad_apps: list[str]) -> st.SearchStrategy[list[str]]:
    """Values for the command's arguments, often the sample app on memory://, then options
    (flags alone, others with a value) and values where options go."""
    junk = st.one_of(st.sampled_from(JUNK + URLS + APPS + bad_apps), st.text(max_size=12))

    def value(param: click.Parameter) -> st.SearchStrategy[str]:
        good = GOOD.get(param.name or "", [])
        return st.one_of(st.sampled_from(good), junk) if good else junk

    arguments = [value(p) for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if isinstance(p, click.Option)]

    def given_as(p: click.Option) -> st.SearchStrategy[list[str]]:
        return st.sampled_from(p.opts).flatmap(
            lambda name: st.just([name]) if p.is_flag else value(p).map(lambda v: [name, v])
        )

    option = st.sampled_from(options).flatmap(given_as)
    pieces = st.lists(st.one_of(option, option, option, junk.map(lambda v: [v])), max_size=4)
    names = {name for p in options for name in p.opts}
    usable = [n for n in ("--app", "--url") if n in names]  # the sample app on memory://
    backend = st.sampled_from([[], [t for n in usable for t in (n, GOOD[n[2:]][0])]])
    return st.tuples(st.tuples(*arguments), backend, pieces).map(
        lambda drawn: [*drawn[0], *drawn[1], *(token for piece in drawn[2] for token in piece)]
    )


def _ends_early(path: tuple[str, ...], args: list[str]) -> list[str]:
    """`args` for a command that must not run for real: only unreachable or broken URLs."""
    if path[0] not in LONG_RUNNING:
        return args
    args = [DOWN if "memory:" in arg.lower() else arg for arg in args]
    return [*args, "--url", DOWN] if path[0] == "serve" or "--url" not in args else args


@st.composite
def _invocations(draw: st.DrawFn, bad_apps: list[str]) -> list[str]:
    command = draw(st.sampled_from(LEAVES))
    path: tuple[str, ...] = command.meta_path  # type: ignore[attr-defined]
    front = draw(st.sampled_from([[]] * 8 + [["--log-format", "json"], ["--log-format", "xml"]]))
    return [*front, *path, *_ends_early(path, draw(_vector(command, bad_apps)))]


@pytest.fixture(scope="module")
def invocations(bad_apps: dict[str, str]) -> st.SearchStrategy[list[str]]:
    """Argument vectors for any command, the apps that fail to load among the values."""
    return _invocations(sorted(bad_apps.values()))


ENV = {"HUB_SCHEDULER_JWT_SECRET": "j" * 40, "HUB_SCHEDULER_URL": None,
       "HUB_SCHEDULER_REDIS_URL": None, "REDIS_URL": None, "REDIS_HOST": None,
       "REDIS_PORT": None, "REDIS_PASSWORD": None, "REDIS_DB": None, "HUB_SCHEDULER_APP": None,
       "HUB_SCHEDULER_LOG_FORMAT": None}  # fmt: skip


def test_random_arguments_never_break_the_cli(
    invocations: st.SearchStrategy[list[str]],
) -> None:
    """Exit 0, 1 or 2; no traceback; one stderr line at most on failure; no password."""
    walked = {" ".join(c.meta_path) for c in LEAVES}  # type: ignore[attr-defined]
    assert {"worker", "serve", "check", "jobs trigger", "dlq retry", "token create"} <= walked

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(invocations)
    def check(args: list[str]) -> None:
        result = CliRunner().invoke(cli, args, env=ENV)
        shown = result.stdout + result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        assert result.exit_code in {0, 1, 2}, (args, shown)
        assert "Traceback" not in shown, (args, shown)
        assert "internal error" not in result.stderr, (args, result.stderr)
        if result.exit_code:
            assert len(result.stderr.splitlines()) <= 1, (args, result.stderr)
        assert SECRET not in shown, (args, shown)

    check()
