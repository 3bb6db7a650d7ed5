"""The ``hub-scheduler`` command line: the group, the process commands (serve, worker,
scheduler), schedules and tokens; the operator commands live in `admin`.

Every command that opens a backend takes ``--url`` (alias ``--redis-url``); without it the
environment names one (``HUB_SCHEDULER_URL``, ``HUB_SCHEDULER_REDIS_URL``, ``REDIS_URL``,
``REDIS_HOST``/``PORT``/``PASSWORD``/``DB``, in that order), and only ``serve`` falls back to
``memory://``. Errors a person can fix end in one line on stderr and exit code 2, an
unreachable backend in exit code 1 — never a traceback, never a password.

`--help`, `--version` and `schedules preview` import neither the web stack nor taskiq: the
commands import what they need when they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import click
from click.exceptions import NoArgsIsHelpError

from hub_scheduler import __version__
from hub_scheduler.adapters.backends import scheme_of
from hub_scheduler.domain.admin import every_page
from hub_scheduler.domain.errors import HubSchedulerError, ValidationError
from hub_scheduler.domain.ports import Migratable
from hub_scheduler.domain.schedule import Cron, Schedule
from hub_scheduler.domain.urls import MEMORY_URL, URL_ENV
from hub_scheduler.entrypoints.cli import admin, logs
from hub_scheduler.entrypoints.cli.common import (
    APP_ENV,
    ARGS_META,
    DEMO_APP,
    EXIT_UNAVAILABLE,
    CommandError,
    Duration,
    F,
    FiniteFloatRange,
    app_options,
    command_error,
    describe,
    emit,
    exit_code_of,
    fail,
    load_hub,
    run,
    scrubbed_of,
    url_option,
)
from hub_scheduler.runtime.worker import WorkerSettings

if TYPE_CHECKING:
    from pydantic import ValidationError as PydanticValidationError

    from hub_scheduler.entrypoints.api.app import InsecureSecretError
    from hub_scheduler.entrypoints.settings import Settings
    from hub_scheduler.hub import Hub

EXIT_INTERRUPTED = 130
#: The roles a token may carry (the admin API's `ROLES`; a test keeps the two alike).
ROLE_NAMES = ("SystemAdmin", "JobViewer")
MAX_TOKEN_TTL = timedelta(days=365)
logger = logging.getLogger("hub_scheduler.cli")


@contextlib.contextmanager
def _one_line_errors(args: Sequence[str] = ()) -> Iterator[None]:
    """Every error as one ``error: ...`` line on stderr: click's own (unknown command, bad
    option value ...), ours, and — as a last resort — anything unexpected. Any URL of the
    command line `args` that the message quotes is shown redacted."""

    def error(message: str, exit_code: int) -> CommandError:
        return command_error(scrubbed_of(message, args), exit_code)

    try:
        yield
    except CommandError:
        raise  # one line already
    except NoArgsIsHelpError as exc:  # a group without its command
        group = exc.ctx.command
        names = group.list_commands(exc.ctx) if isinstance(group, click.Group) else []
        raise error(
            f"give a command: {', '.join(names)} (see '{exc.ctx.command_path} --help')",
            exc.exit_code,
        ) from None
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        raise error(exc.format_message() + hint, exc.exit_code) from None
    except click.ClickException as exc:
        raise error(exc.format_message(), exc.exit_code) from None
    except (click.exceptions.Exit, click.Abort):
        raise
    except Exception as exc:
        raise error(f"internal error: {type(exc).__name__}: {exc}", 1) from None


class OneLineGroup(click.Group):
    """A group whose every error is one ``error: ...`` line on stderr (the one place
    click's error output is replaced)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """See `click.Group.make_context`."""
        with _one_line_errors(args):
            ctx = super().make_context(info_name, list(args), parent, **extra)
        ctx.meta[ARGS_META] = tuple(args)
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        """See `click.Group.invoke`."""
        with _one_line_errors(ctx.meta.get(ARGS_META, ())):
            return super().invoke(ctx)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hub-scheduler")
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="text",
    show_default=True,
    envvar=logs.LOG_FORMAT_ENV,
    help=f"Log records as text or as JSON lines (env {logs.LOG_FORMAT_ENV}).",
)
@click.pass_context
def cli(ctx: click.Context, log_format: str) -> None:
    """hub_scheduler: run, inspect and steer background jobs."""
    ctx.meta[logs.FORMAT_META] = log_format


# --- the process commands ---------------------------------------------------------------


def _backend_kind(hub: Hub) -> str:
    scheme = scheme_of(hub.url)
    return {"memory": "In-memory store", "postgresql": "PostgreSQL", "postgres": "PostgreSQL"}.get(
        scheme, "Redis" if scheme in {"redis", "rediss", "unix"} else f"{scheme}:// backend"
    )


def _log_connected(hub: Hub) -> None:
    """What the process connected to (operators look for "Redis connected")."""
    logger.info(
        "%s connected: %s (prefix %s)", _backend_kind(hub), hub.url, hub.prefix,
        extra={"backend": hub.url, "prefix": hub.prefix},
    )  # fmt: skip
    if hub.url.startswith(MEMORY_URL):
        logger.warning("memory:// is private to this process: nothing else sees its runs")


HEALTH_PORT_ENV = "HUB_SCHEDULER_HEALTH_PORT"


def health_options(command: F) -> F:
    """``--health-port`` and ``--health-host``: serve ``/livez`` and ``/readyz`` there."""
    port = click.option(
        "--health-port", type=click.IntRange(1, 65535), default=None, envvar=HEALTH_PORT_ENV,
        help=f"Serve GET /livez and /readyz on this port (env {HEALTH_PORT_ENV}).",
    )  # fmt: skip
    host = click.option(
        "--health-host", default="0.0.0.0", show_default=True,  # noqa: S104 - the kubelet's way in
        help="The address the probes listen on.",
    )  # fmt: skip
    return port(host(command))


@attrs.frozen
class Probes:
    """Where this process serves its Kubernetes probes (`port` None: nowhere)."""

    host: str
    port: int | None

    @contextlib.asynccontextmanager
    async def serving(
        self, alive: Callable[[], bool], ready: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[None]:
        """Serve ``/livez`` (`alive`) and ``/readyz`` (`ready`) for the block; a port that
        cannot be had is one line, exit 2."""
        if self.port is None:
            yield
            return
        from hub_scheduler.entrypoints.probes import ProbeServer  # noqa: PLC0415

        server = ProbeServer(alive, ready, self.host, self.port)
        try:
            await server.start()
        except OSError as exc:
            fail(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}")
        logger.info(
            "Probes on http://%s:%d/livez and /readyz", self.host, server.port,
            extra={"health_port": server.port},
        )  # fmt: skip
        try:
            yield
        finally:
            await server.aclose()


async def _warn_unsafe_store(hub: Hub) -> None:
    """One WARNING line per way the store can lose runs (an evicting Redis); a store that
    will not tell is no reason not to start."""
    try:
        vitals = await hub.admin.vitals()
    except HubSchedulerError:
        return
    for problem in () if vitals is None else vitals.problems:
        logger.warning("%s", problem, extra={"backend": hub.url})


def _log_worker_ready(hub: Hub, settings: WorkerSettings) -> None:
    lease, grace = settings.lease.total_seconds(), settings.grace.total_seconds()
    logger.info(
        "Worker ready: concurrency %d, lease %gs, grace %gs, %d jobs",
        settings.concurrency, lease, grace, len(hub.registry),
        extra={"concurrency": settings.concurrency, "lease_seconds": lease,
               "grace_seconds": grace, "jobs": len(hub.registry)},
    )  # fmt: skip


async def _log_scheduler_ready(hub: Hub) -> None:
    from hub_scheduler.entrypoints.alerting import log_alerts  # noqa: PLC0415

    count = len(await hub.schedules.list())
    logger.info("Job scheduler initialized: %d schedules", count, extra={"schedules": count})
    log_alerts(hub)


@cli.command()
@click.argument("app", envvar=APP_ENV)
@click.option("--concurrency", "-c", default=5, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--lease", default=30.0, show_default=True, type=FiniteFloatRange(1, 3600),
              help="Seconds a claim lasts without renewal.")  # fmt: skip
@click.option("--grace", default=30.0, show_default=True, type=FiniteFloatRange(0, 3600),
              help="Seconds running jobs get to finish on SIGTERM/SIGINT.")  # fmt: skip
@url_option("The backend to work from; overrides the app's")
@health_options
@click.pass_context
def worker(  # noqa: PLR0917 - click passes every option positionally
    ctx: click.Context,
    app: str,
    concurrency: int,
    lease: float,
    grace: float,
    url: str | None,
    health_port: int | None,
    health_host: str,
) -> None:
    """Run the jobs of APP ('module:attribute' naming a Hub) until SIGTERM or SIGINT."""
    hub = load_hub(app, url)
    logs.configure(logs.format_of(ctx))
    settings = WorkerSettings(
        concurrency=concurrency, lease=timedelta(seconds=lease), grace=timedelta(seconds=grace)
    )
    try:
        asyncio.run(_run_worker(hub, settings, Probes(health_host, health_port)))
    except HubSchedulerError as exc:
        fail(describe(exc, hub), exit_code_of(exc), url=url)
    except KeyboardInterrupt:  # Ctrl-C before the graceful-stop handlers are installed
        sys.exit(EXIT_INTERRUPTED)


async def _run_worker(hub: Hub, settings: WorkerSettings, probes: Probes) -> None:
    try:
        await hub.ping()
        _log_connected(hub)
        await _warn_unsafe_store(hub)
        worker = hub.worker(settings)

        async def ready() -> bool:
            await hub.ping()
            return worker.alive and not worker.stopping

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        async with probes.serving(lambda: worker.alive, ready):
            _log_worker_ready(hub, settings)
            await worker.run()
    finally:
        with contextlib.suppress(Exception):
            await hub.aclose()


@cli.command()
@click.argument("app", envvar=APP_ENV)
@click.option("--lookahead", default=0.0, show_default=True, type=FiniteFloatRange(0, 60),
              help="Seconds ahead to fire slots, each as a run delayed to its instant"
                   " (for thousands of schedules due at once).")  # fmt: skip
@url_option("The backend with the schedules; overrides the app's")
@health_options
@click.pass_context
def scheduler(  # noqa: PLR0917 - click passes every option positionally
    ctx: click.Context,
    app: str,
    lookahead: float,
    url: str | None,
    health_port: int | None,
    health_host: str,
) -> None:
    """Fire the schedules of APP until SIGTERM or SIGINT (run as many as you like)."""
    hub = load_hub(app, url)
    logs.configure(logs.format_of(ctx))
    _alerts_from_settings(hub)
    ahead = timedelta(seconds=lookahead)
    try:
        asyncio.run(_run_scheduler(hub, Probes(health_host, health_port), ahead))
    except HubSchedulerError as exc:
        fail(describe(exc, hub), exit_code_of(exc), url=url)
    except KeyboardInterrupt:  # Ctrl-C before the graceful-stop handlers are installed
        sys.exit(EXIT_INTERRUPTED)


def _with_alerts(hub: Hub, settings: Settings, enabled: bool) -> Settings:
    """`settings`, after giving `hub` their alert channels when `enabled` (`configure_alerts`;
    raises `ValidationError` for an alert URL apprise refuses)."""
    from hub_scheduler.entrypoints.alerting import configure_alerts  # noqa: PLC0415

    if enabled:
        configure_alerts(hub, settings)
    return settings


def _alerts_from_settings(hub: Hub) -> None:
    """Give `hub` the alert channels and thresholds of the environment (`configure_alerts`);
    a bad setting is one line, exit 2."""
    from pydantic import ValidationError as PydanticValidationError  # noqa: PLC0415

    from hub_scheduler.entrypoints.alerting import configure_alerts  # noqa: PLC0415
    from hub_scheduler.entrypoints.settings import Settings  # noqa: PLC0415

    try:
        configure_alerts(hub, Settings(url=hub.url, prefix=hub.prefix))
    except (HubSchedulerError, PydanticValidationError) as exc:
        fail(_settings_problem(exc))


async def _run_scheduler(hub: Hub, probes: Probes, lookahead: timedelta) -> None:
    try:
        await hub.ping()
        _log_connected(hub)
        await _warn_unsafe_store(hub)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        async with hub.scheduling(lookahead=lookahead) as running:

            async def ready() -> bool:
                await hub.ping()
                return running.alive and not running.stopping

            async with probes.serving(lambda: running.alive, ready):
                await _log_scheduler_ready(hub)
                await stopped.wait()
    finally:
        with contextlib.suppress(Exception):
            await hub.aclose()


@cli.group()
def schedules() -> None:
    """Inspect schedules."""


def _parse_instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 instant") from None
    if instant.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no time zone; add Z or an offset")
    return instant


@schedules.command()
@click.argument("expression")
@click.option("--tz", "timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--after", default=None, help="ISO 8601 instant to start from (default: now).")
@click.option("-n", "count", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def preview(expression: str, timezone: str, after: str | None, count: int, as_json: bool) -> None:
    """The next fire times of a cron EXPRESSION, with DST notes (no backend needed)."""
    start = _parse_instant(after) if after else datetime.now(UTC)
    try:
        fires = Schedule(Cron(expression, timezone)).preview(start, count)
    except ValidationError as exc:
        fail(str(exc))
    if as_json:
        rows = [
            {"utc": f.utc.isoformat().replace("+00:00", "Z"), "local": f.local.isoformat(),
             "note": f.note}
            for f in fires
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'UTC':<22}{'local (' + timezone + ')':<34}note")
    for f in fires:
        utc = f.utc.strftime("%Y-%m-%d %H:%M:%SZ")
        local = f.local.strftime("%Y-%m-%d %H:%M:%S %Z")
        click.echo(f"{utc:<22}{local:<34}{f.note or ''}")


@schedules.command("list")
@app_options
def schedules_list(app: str, url: str | None, as_json: bool) -> None:
    """Every schedule with its origin, next fire and last outcome. Schedules declared in code
    (origin ``code``) are owned by the code: they can be paused and resumed, not edited or
    deleted; ``runtime`` ones are fully editable."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        from hub_scheduler.entrypoints.api.schemas import schedule_json  # noqa: PLC0415

        return [schedule_json(s) for s in await every_page(hub.admin.schedules_page)]

    emit(run(app, url, action), as_json, lambda rows: [
        f"{r['id']:<32}{r['origin']:<9}{r['description']:<48}"
        f"next {r['next_fire'] or 'ended'}  last {r['last_outcome'] or '—'}"
        + ("  (paused)" if r["paused"] else "")
        for r in rows
    ])  # fmt: skip


@cli.group()
def db() -> None:
    """The backend's schema (PostgreSQL): create and upgrade it."""


@db.command("migrate")
@app_options
def db_migrate(app: str, url: str | None, as_json: bool) -> None:
    """Create or upgrade the schema of the app's hub (safe from several processes at once;
    Redis and memory:// have none, so there is nothing to do)."""

    async def action(hub: Hub) -> dict[str, Any]:
        backend = hub.backend
        applied = await backend.migrate() if isinstance(backend, Migratable) else []
        return {"backend": hub.url, "prefix": hub.prefix, "applied": applied}

    emit(run(app, url, action, ping=False), as_json, lambda d: [
        f"{d['backend']} (prefix {d['prefix']}): "
        + (f"applied {', '.join(d['applied'])}" if d["applied"] else "up to date")
    ])  # fmt: skip


@cli.command()
@click.argument("app", required=False, envvar=APP_ENV)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-worker", is_flag=True, help="Do not run a worker in this process.")
@click.option("--no-scheduler", is_flag=True, help="Do not run a scheduler in this process.")
@url_option("The backend to use; none: the app's, for the demo memory://")
@click.pass_context
def serve(  # noqa: PLR0917 - click passes every option positionally
    ctx: click.Context,
    app: str | None,
    host: str,
    port: int,
    no_worker: bool,
    no_scheduler: bool,
    url: str | None,
) -> None:
    """Admin API, worker and scheduler in one process (APP defaults to the demo)."""
    # Only `serve` needs the web stack and the server.
    import uvicorn  # noqa: PLC0415
    from pydantic import ValidationError as PydanticValidationError  # noqa: PLC0415

    from hub_scheduler.entrypoints.api.app import (  # noqa: PLC0415
        InsecureSecretError,
        create_app,
        jwt_secret,
    )
    from hub_scheduler.entrypoints.settings import Settings  # noqa: PLC0415

    hub = load_hub(app or DEMO_APP, url, memory_ok=True)
    logs.configure(logs.format_of(ctx))
    try:
        settings = _with_alerts(hub, Settings(url=hub.url, prefix=hub.prefix), not no_scheduler)
        secret = jwt_secret(settings, hub)
    except (InsecureSecretError, PydanticValidationError, HubSchedulerError) as exc:
        fail(_settings_problem(exc))

    # The worker and scheduler start before the server, so that what stops them is one line
    # of ours; the app's lifespan stops them when the server shuts down (before uvicorn
    # re-raises the SIGINT it handled).
    engines = contextlib.AsyncExitStack()

    @contextlib.asynccontextmanager
    async def in_process(_: object) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engines.aclose()

    # Litestar's own logging setup would replace the CLI's (text or JSON) on the root logger.
    web = create_app(hub, settings, lifespan=[in_process], logging_config=None)
    server = uvicorn.Server(
        # proxy_headers=False: X-Forwarded-* are believed only from the proxies listed in
        # HUB_SCHEDULER_TRUSTED_PROXIES (the app's own middleware), never from uvicorn's
        # default of 127.0.0.1.
        uvicorn.Config(
            web, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False
        )
    )

    async def main() -> None:
        try:
            # Before the banner and the server: an unreachable backend is one line, exit 1.
            await hub.ping()
            listening = _listen(host, port)
            _log_connected(hub)
            async with contextlib.AsyncExitStack() as sockets, engines:
                sockets.callback(listening.close)
                if not no_scheduler:
                    await engines.enter_async_context(hub.scheduling())
                    await _log_scheduler_ready(hub)
                if not no_worker:
                    worker = await engines.enter_async_context(hub.worker())
                    _log_worker_ready(hub, worker.settings)
                _banner(hub, secret, host, port, worker=not no_worker, scheduler=not no_scheduler)
                await server.serve(sockets=[listening])
        finally:
            with contextlib.suppress(Exception):
                await hub.aclose()

    try:
        asyncio.run(main())
    except HubSchedulerError as exc:
        fail(describe(exc, hub), exit_code_of(exc), url=url)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the SIGINT it handled once it has shut down gracefully
    except SystemExit as exc:  # uvicorn's own startup failed (it has logged why)
        if exc.code:
            fail(f"the server on {host}:{port} could not start", EXIT_UNAVAILABLE)


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so that a port in use or a bad --host is one line."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listening = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return listening


def _banner(hub: Hub, secret: str, host: str, port: int, *, worker: bool, scheduler: bool) -> None:
    from hub_scheduler.entrypoints.api.security import ROLES, mint_token  # noqa: PLC0415

    base = f"http://{host}:{port}"
    click.echo(f"hub_scheduler {__version__}: dashboard {base}/admin/, API {base}/api/v1")
    click.echo(
        f"  {len(hub.registry)} jobs; worker {'on' if worker else 'off'}, "
        f"scheduler {'on' if scheduler else 'off'}"
    )
    if hub.url.startswith(MEMORY_URL):
        click.echo(f"  running on memory:// (nothing is kept; set --url or {URL_ENV} to keep it)")
        token = mint_token(secret, "demo-admin", ROLES[0], timedelta(hours=8))
        click.echo(f"  log in with: Authorization: Bearer {token}")
    else:
        click.echo(f"  backend {hub.url}")
        click.echo(
            "  log in with a token from: hub-scheduler token create --subject NAME --role ROLE"
        )
    sys.stdout.flush()


def _settings_problem(
    exc: InsecureSecretError | PydanticValidationError | HubSchedulerError,
) -> str:
    from pydantic import ValidationError as PydanticValidationError  # noqa: PLC0415

    if isinstance(exc, PydanticValidationError):
        # The message alone: pydantic's full text repeats the input, which may be a secret.
        first = exc.errors()[0]
        return f"bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)


@cli.group()
def token() -> None:
    """Admin API tokens."""


@token.command("create")
@click.option("--subject", required=True, help="Who the token is for (shown in the audit trail).")
@click.option("--role", type=click.Choice(ROLE_NAMES), required=True)
@click.option("--ttl", default="8h", show_default=True, type=Duration(MAX_TOKEN_TTL),
              help="Lifetime: 30m, 8h, 7d ... (at most 365d).")  # fmt: skip
def token_create(subject: str, role: str, ttl: timedelta) -> None:
    """Print a signed JWT for the admin API (secret: HUB_SCHEDULER_JWT_SECRET)."""
    from pydantic import ValidationError as PydanticValidationError  # noqa: PLC0415

    from hub_scheduler.entrypoints.api.app import InsecureSecretError, jwt_secret  # noqa: PLC0415
    from hub_scheduler.entrypoints.api.security import mint_token  # noqa: PLC0415
    from hub_scheduler.entrypoints.settings import Settings  # noqa: PLC0415

    try:
        settings = Settings()
        if settings.is_memory and settings.jwt_secret is None:
            # A token is only good for a server with the same secret; without one, a
            # memory:// server signs with a random secret of its own process.
            fail(
                "set HUB_SCHEDULER_JWT_SECRET to the server's secret (serve on memory:// "
                "without one prints a token for its own per-process secret)"
            )
        secret = jwt_secret(settings)
    except (InsecureSecretError, PydanticValidationError) as exc:
        fail(_settings_problem(exc))
    click.echo(mint_token(secret, subject, role, ttl))


for _command in admin.COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli()
