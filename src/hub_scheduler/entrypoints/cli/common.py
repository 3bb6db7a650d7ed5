"""What the CLI's commands share: the app, backend and actor options, checked option types,
loading the hub, and turning errors into one line on stderr with the product's exit codes.

Exit codes: 0 done; 1 the backend cannot be reached (or failed under us); 2 bad input — a bad
APP, URL or option, an unknown job or run, an illegal transition such as cancelling a running
run. Never a traceback, never a password: URLs are shown `redacted`, and every message is
scrubbed of the secrets of the URL the command was given.

This module is imported by every command, ``--help`` and ``--version`` included, so it
imports nothing heavy: the hub, pydantic and the web stack load when a command needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import importlib
import json
import math
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import attrs
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
from hub_scheduler.domain.urls import (
    MEMORY_URL,
    REDIS_URL_ENV,
    SEED_URL_ENV,
    URL_ENV,
    configured_url,
    scrubbed,
)
from hub_scheduler.entrypoints.cli import logs

if TYPE_CHECKING:
    from hub_scheduler.hub import Hub

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
#: Where `load_hub` leaves the URL it used, so that any error line can be scrubbed of it.
_URL_META = "hub_scheduler.url"
#: Where the group leaves the command line (a usage error may quote a URL from it).
ARGS_META = "hub_scheduler.args"


def scrubbed_of(message: str, texts: Sequence[str | None]) -> str:
    """`message` scrubbed of the secrets of every URL-like text among `texts` (the command
    line, the URL used): a usage error quotes what it was given."""
    for text in texts:
        if text and ("://" in text or "@" in text):
            message = scrubbed(message, text)
    return message


def _scrub(message: str) -> str:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return message
    return scrubbed_of(message, [ctx.meta.get(_URL_META), *ctx.meta.get(ARGS_META, ())])


class CommandError(click.ClickException):
    """A command failed because the backend did: one ``error: ...`` line, exit 1."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, message: str) -> None:
        lines = _scrub(message).strip().splitlines()
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
    """Stop the command with one ``error:`` line (scrubbed of `url`'s secrets)."""
    raise command_error(scrubbed(message, url), exit_code)


#: Which event loop the engines (worker, scheduler, serve) run on: ``uvloop`` or ``asyncio``;
#: unset, uvloop when it is installed (``hub-scheduler[speed]``), else asyncio's own.
EVENT_LOOP_ENV = "HUB_SCHEDULER_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `EVENT_LOOP_ENV` asks for (None: asyncio's default); a bad value or
    uvloop asked for but missing is one line, exit 2."""
    raw = os.environ.get(EVENT_LOOP_ENV, "")
    choice = raw.strip().lower()
    if choice not in {"", "asyncio", "uvloop"}:
        fail(f"{EVENT_LOOP_ENV} must be asyncio or uvloop, got {raw!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional, from the speed extra
    except ImportError:
        if choice == "uvloop":
            fail(f"{EVENT_LOOP_ENV}=uvloop needs uvloop: pip install 'hub-scheduler[speed]'")
        return None
    return uvloop.new_event_loop


def run_engine(main: Callable[[], Awaitable[T]]) -> T:
    """Run `main()` to its end on the event loop `EVENT_LOOP_ENV` chooses (`loop_factory`),
    as `asyncio.run` would."""
    factory = loop_factory()  # before `main()` exists: a bad value leaves no coroutine behind

    async def run() -> T:
        return await main()

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run())


def exit_code_of(exc: HubSchedulerError) -> int:
    """2 for what the caller can fix, 1 when the backend failed."""
    return EXIT_BAD_INPUT if isinstance(exc, BAD_INPUT_ERRORS) else EXIT_UNAVAILABLE


def describe(exc: HubSchedulerError, hub: Hub) -> str:
    """What went wrong, in words about the backend (its URL redacted), never the driver."""
    if isinstance(exc, BackendUnavailableError):
        if exc.operation in {"ping", "connect"}:
            return f"cannot reach the backend at {hub.url} ({exc.cause})"
        return f"the backend at {hub.url} failed: {exc}"
    return str(exc)


def one_line(exc: BaseException) -> str:
    """An exception as words on one line: its type (unless it is one of ours) and message."""
    if isinstance(exc, SyntaxError):
        where = f" ({Path(exc.filename).name}, line {exc.lineno})" if exc.filename else ""
        return f"SyntaxError: {exc.msg}{where}"
    if isinstance(exc, HubSchedulerError | ImportError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


# --- option types ---------------------------------------------------------------------


class FiniteFloatRange(click.FloatRange):
    """A float within bounds that is a real number: ``nan`` and ``inf`` are refused."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """See `click.ParamType.convert`."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


_DURATION = re.compile(r"(?P<number>[0-9]{1,9})(?P<unit>[smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """A duration like ``30m``, ``8h`` or ``7d``: more than nothing, at most `maximum`."""

    name = "duration"

    def __init__(self, maximum: timedelta) -> None:
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """See `click.ParamType.convert`."""
        if isinstance(value, timedelta):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a duration like 30m, 8h or 7d.", param, ctx)
        duration = timedelta(**{_UNITS[match["unit"]]: int(match["number"])})
        if not timedelta(0) < duration <= self.maximum:
            self.fail(f"{value!r} is not between 1s and {self.maximum.days}d.", param, ctx)
        return duration


# --- options ----------------------------------------------------------------------------


def url_option(help_text: str) -> Callable[[F], F]:
    """``--url`` (alias ``--redis-url``); without it, the environment's (`configured_url`)."""
    return click.option(
        "--url", "--redis-url", "url", default=None, metavar="URL",
        help=f"{help_text} (else env {URL_ENV}, {REDIS_URL_ENV}, {SEED_URL_ENV} or REDIS_HOST).",
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


# --- loading the hub ----------------------------------------------------------------------


@attrs.frozen
class Target:
    """The backend a command was pointed at, and how: ``--url`` or an environment variable
    (None when neither named one, so the app's hub keeps its own)."""

    url: str | None
    source: str | None

    @classmethod
    def of(cls, option: str | None) -> Target:
        """`option` (the ``--url`` given), else what the environment names."""
        if option is not None:
            return cls(option, "--url")
        try:
            found = configured_url(os.environ)
        except ValidationError as exc:
            fail(str(exc))
        return cls(found.url, found.source) if found else cls(None, None)


def load_hub(path: str, url: str | None = None, *, memory_ok: bool = False) -> Hub:
    """The `Hub` named by ``module:attribute``, moved to the backend at `url` (from
    ``--url``, else the environment) when one is named.

    Unless `memory_ok`, a hub left on ``memory://`` without anyone asking for it is refused:
    a worker, scheduler or probe there would see a store no other process shares. Bad input
    stops the command with one line and exit 2.
    """
    from hub_scheduler.hub import Hub  # noqa: PLC0415 - not for --help and --version

    target = Target.of(url)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and target.url:
        ctx.meta[_URL_META] = target.url
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        fail(f"APP must look like 'package.module:hub', got {path!r}")
    if target.url is not None:
        _check_url(target)
    hub = _attribute(_import(module_name, target.url), path, attribute)
    if not isinstance(hub, Hub):
        kind = "nothing" if hub is None else type(hub).__name__
        fail(f"{path!r} must be a hub_scheduler.Hub, found {kind}")
    if target.url is None:
        if hub.url.startswith(MEMORY_URL) and not memory_ok:
            fail(
                f"no backend given, and memory:// is private to this process: pass --url "
                f"redis://HOST:6379/0 (or set {URL_ENV} or {SEED_URL_ENV}), or --url memory:// "
                "to use it anyway"
            )
        return hub
    if target.url == hub.url:
        return hub
    try:
        return hub.with_backend(target.url)
    except (ValueError, HubSchedulerError, ImportError) as exc:  # a URL it cannot parse
        reason = " ".join(str(exc).split()).removeprefix("invalid backend URL: ")
        fail(f"invalid backend URL{_from(target)}: {reason}", url=target.url)


def _import(module_name: str, url: str | None) -> Any:
    """The app's module; whatever goes wrong importing it is one line."""
    sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(module_name)
    except BackendUnavailableError as exc:
        fail(f"cannot import {module_name!r}: {exc}", EXIT_UNAVAILABLE, url=url)
    except SystemExit as exc:
        fail(f"cannot import {module_name!r}: it exited (status {exc.code})", url=url)
    except Exception as exc:
        fail(f"cannot import {module_name!r}: {one_line(exc)}", url=url)
    finally:
        sys.path.pop(0)


def _attribute(module: Any, path: str, attribute: str) -> Any:
    try:
        return getattr(module, attribute, None)
    except Exception as exc:
        fail(f"cannot read {path!r}: {one_line(exc)}")


def _check_url(target: Target) -> None:
    """Refuse an empty URL or an unknown scheme before the app is imported (whose own hub
    may read the same URL from the environment)."""
    assert target.url is not None
    if not target.url.strip():
        fail("the backend URL is empty; give one such as redis://localhost:6379/0")
    scheme, known = scheme_of(target.url), known_schemes()
    if scheme not in known:
        fail(f"{UnknownBackendError(scheme, known)}{_from(target)}")


def _from(target: Target) -> str:
    """Where a URL came from, when not from ``--url`` (the environment may surprise)."""
    return "" if target.source == "--url" else f" (from {target.source})"


def run(
    app: str, url: str | None, action: Callable[[Hub], Awaitable[T]], *, ping: bool = True
) -> T:
    """Load the hub, check its backend answers (unless not `ping`), run `action`; errors
    become exit codes."""
    hub = load_hub(app, url)
    logs.configure(logs.format_of(click.get_current_context(silent=True)), quiet=True)

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
