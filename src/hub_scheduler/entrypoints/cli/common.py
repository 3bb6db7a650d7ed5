"""What the CLI's commands share: the app, backend and actor options, loading the hub, and
turning errors into one line on stderr with the product's exit codes.

Exit codes: 0 done; 1 the backend cannot be reached (or failed under us); 2 bad input — a bad
APP, URL or option, an unknown job or run, an illegal transition such as cancelling a running
run. Never a traceback, never a password: the hub shows its URL masked, and every message is
scrubbed of the password of the URL it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import importlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click

from hub_scheduler.adapters.backends import known_schemes, scheme_of
from hub_scheduler.domain.admin import Actor
from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    HubSchedulerError,
    IllegalTransitionError,
    NotFoundError,
    UnknownBackendError,
    ValidationError,
)
from hub_scheduler.domain.urls import scrubbed
from hub_scheduler.hub import MEMORY_URL, REDIS_URL_ENV, URL_ENV, Hub

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

APP_ENV = "HUB_SCHEDULER_APP"
ACTOR_ENV = "HUB_SCHEDULER_ACTOR"
DEMO_APP = "hub_scheduler.demo:hub"
#: The channel the audit trail records for everything done through the CLI.
CHANNEL = "cli"

EXIT_UNAVAILABLE = 1
EXIT_BAD_INPUT = 2
#: Domain errors the person at the keyboard can fix (the rest mean the backend failed).
BAD_INPUT_ERRORS: tuple[type[HubSchedulerError], ...] = (
    ValidationError,
    NotFoundError,
    IllegalTransitionError,
)
MAX_ACTOR_LENGTH = 200


class CommandError(click.ClickException):
    """A command failed because the backend did: one ``error: ...`` line, exit 1."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, message: str) -> None:
        lines = message.strip().splitlines()
        super().__init__(lines[0] if lines else "failed")

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the one line (on stderr unless `file` is given)."""
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class BadInputError(CommandError):
    """A command was given something it cannot use: one ``error: ...`` line, exit 2."""

    exit_code = EXIT_BAD_INPUT


def command_error(message: str, exit_code: int) -> CommandError:
    """The `CommandError` for `exit_code` (2: bad input, anything else: 1)."""
    return BadInputError(message) if exit_code == EXIT_BAD_INPUT else CommandError(message)


def fail(message: str, exit_code: int = EXIT_BAD_INPUT, *, url: str | None = None) -> NoReturn:
    """Stop the command with one ``error:`` line (scrubbed of `url`'s password)."""
    raise command_error(scrubbed(message, url), exit_code)


def exit_code_of(exc: HubSchedulerError) -> int:
    """2 for what the caller can fix, 1 when the backend failed."""
    return EXIT_BAD_INPUT if isinstance(exc, BAD_INPUT_ERRORS) else EXIT_UNAVAILABLE


def describe(exc: HubSchedulerError, hub: Hub) -> str:
    """What went wrong, in words about the backend (its URL masked), never the driver."""
    if isinstance(exc, BackendUnavailableError):
        if exc.operation == "ping":
            return f"cannot reach the backend at {hub.url} ({exc.cause})"
        return f"the backend at {hub.url} failed: {exc}"
    return str(exc)


def url_option(help_text: str) -> Callable[[F], F]:
    """``--url`` (alias ``--redis-url``), read from ``HUB_SCHEDULER_URL``, then
    ``HUB_SCHEDULER_REDIS_URL``."""
    return click.option(
        "--url", "--redis-url", "url", envvar=[URL_ENV, REDIS_URL_ENV], default=None,
        metavar="URL", help=f"{help_text} (env {URL_ENV}, then {REDIS_URL_ENV}).",
    )  # fmt: skip


def _check_actor(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    name = value.strip()
    if not name or len(name) > MAX_ACTOR_LENGTH:
        raise click.BadParameter(f"give a name of 1 to {MAX_ACTOR_LENGTH} characters")
    return name


def actor_option(command: F) -> F:
    """``--actor NAME``: who the audit trail says acted (env ``HUB_SCHEDULER_ACTOR``)."""
    return click.option(
        "--actor", envvar=ACTOR_ENV, default=None, metavar="NAME", callback=_check_actor,
        help=f"Who acts, as the audit trail records it (env {ACTOR_ENV}; default: your OS user).",
    )(command)  # fmt: skip


def app_options(command: F) -> F:
    """``--app``, ``--url`` (alias ``--redis-url``) and ``--json`` for an operator command."""
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)
    command = url_option("The backend: redis://host:6379/0, memory:// ...")(command)
    return click.option(
        "--app", envvar=APP_ENV, default=DEMO_APP, show_default=True,
        help=f"module:attribute naming your Hub (env {APP_ENV}).",
    )(command)  # fmt: skip


def os_user() -> str:
    """The name of the OS user running the CLI (``unknown`` when the system has none)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def cli_actor(name: str | None) -> Actor:
    """The actor of a CLI command: `name` (from ``--actor``) or the OS user."""
    return Actor(subject=name or os_user(), roles=(), channel=CHANNEL)


def load_hub(path: str, url: str | None = None) -> Hub:
    """The `Hub` named by ``module:attribute``, moved to the backend at `url` when one is
    given; a bad path or URL stops the command with one line and exit 2."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        fail(f"APP must look like 'package.module:hub', got {path!r}")
    if url is not None:
        _check_url(url)
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        fail(f"cannot import {module_name!r}: {exc}")
    except HubSchedulerError as exc:
        fail(f"cannot import {module_name!r}: {exc}", exit_code_of(exc), url=url)
    finally:
        sys.path.pop(0)
    hub = getattr(module, attribute, None)
    if not isinstance(hub, Hub):
        kind = "nothing" if hub is None else type(hub).__name__
        fail(f"{path!r} must be a hub_scheduler.Hub, found {kind}")
    if url is None or url == hub.url:
        return hub
    try:
        return hub.with_backend(url)
    except ValueError as exc:  # a URL the backend cannot parse (port, options ...)
        fail(f"invalid backend URL: {exc}", url=url)


def _check_url(url: str) -> None:
    """Refuse an empty URL or an unknown scheme before the app is imported (whose own hub
    may read the same URL from the environment)."""
    if not url.strip():
        fail("the backend URL is empty; give one such as redis://localhost:6379/0")
    scheme, known = scheme_of(url), known_schemes()
    if scheme not in known:
        fail(str(UnknownBackendError(scheme, known)))


def quiet_logging() -> None:
    """Library warnings as one line each on stderr, without tracebacks (unless the app has
    configured logging itself)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        bare = logging.makeLogRecord(record.__dict__)
        bare.exc_info, bare.exc_text, bare.stack_info = None, None, None
        return super().format(bare)


def run(
    app: str, url: str | None, action: Callable[[Hub], Awaitable[T]], *, ping: bool = True
) -> T:
    """Load the hub, check its backend answers (unless not `ping`), run `action`; errors
    become exit codes."""
    hub = load_hub(app, url)
    if hub.url.startswith(MEMORY_URL):
        click.echo(f"note: memory:// belongs to this one process; set --url or {URL_ENV}", err=True)
    quiet_logging()

    async def main() -> T:
        try:
            if ping:
                await hub.ping()
            return await action(hub)
        finally:
            with contextlib.suppress(Exception):
                await hub.aclose()

    try:
        return asyncio.run(main())
    except HubSchedulerError as exc:
        fail(describe(exc, hub), exit_code_of(exc), url=url)


def emit(data: T, as_json: bool, lines: Callable[[T], Sequence[str]]) -> None:
    """Print `data` as JSON or as the given human lines."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        for line in lines(data):
            click.echo(line)
