"""The ``hub-scheduler`` command line.

Errors a person can fix (a bad APP path, an unreachable Redis) end in one line on stderr and
exit code 2 — never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from pydantic import ValidationError as PydanticValidationError

from hub_scheduler import __version__
from hub_scheduler.domain.errors import HubSchedulerError, ValidationError
from hub_scheduler.domain.schedule import Cron, Schedule
from hub_scheduler.entrypoints.api.app import InsecureSecretError, create_app, jwt_secret
from hub_scheduler.entrypoints.api.schemas import schedule_json
from hub_scheduler.entrypoints.api.security import ROLES, mint_token
from hub_scheduler.entrypoints.cli import admin
from hub_scheduler.entrypoints.cli.admin import APP_ENV, DEMO_APP, load_hub, ping
from hub_scheduler.entrypoints.settings import Settings
from hub_scheduler.hub import MEMORY_URL, REDIS_URL_ENV, Hub
from hub_scheduler.runtime.worker import WorkerSettings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hub-scheduler")
def cli() -> None:
    """hub_scheduler: run, inspect and steer background jobs."""


@cli.command()
@click.argument("app", envvar=APP_ENV)
@click.option("--concurrency", "-c", default=5, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--lease", default=30.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Seconds a claim lasts without renewal.")  # fmt: skip
@click.option("--grace", default=30.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds running jobs get to finish on SIGTERM/SIGINT.")  # fmt: skip
@click.option("--redis-url", envvar=REDIS_URL_ENV, default=None,
              help=f"Redis to work from (env {REDIS_URL_ENV}); overrides the app's.")  # fmt: skip
def worker(app: str, concurrency: int, lease: float, grace: float, redis_url: str | None) -> None:
    """Run the jobs of APP ('module:attribute' naming a Hub) until SIGTERM or SIGINT."""
    hub = load_hub(app, redis_url)
    if hub.url.startswith(MEMORY_URL):
        click.echo("note: memory:// is private to this process; nothing else can enqueue", err=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = WorkerSettings(
        concurrency=concurrency, lease=timedelta(seconds=lease), grace=timedelta(seconds=grace)
    )
    try:
        asyncio.run(_run_worker(hub, settings))
    except HubSchedulerError as exc:
        raise click.ClickException(str(exc)) from None


async def _run_worker(hub: Hub, settings: WorkerSettings) -> None:
    worker = hub.worker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await ping(hub)
    try:
        await worker.run()
    finally:
        with contextlib.suppress(Exception):
            await hub.aclose()


@cli.command()
@click.argument("app", envvar=APP_ENV)
@click.option("--redis-url", envvar=REDIS_URL_ENV, default=None,
              help=f"Redis with the schedules (env {REDIS_URL_ENV}).")  # fmt: skip
def scheduler(app: str, redis_url: str | None) -> None:
    """Fire the schedules of APP until SIGTERM or SIGINT (run as many as you like)."""
    hub = load_hub(app, redis_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(_run_scheduler(hub))
    except HubSchedulerError as exc:
        raise click.ClickException(str(exc)) from None


async def _run_scheduler(hub: Hub) -> None:
    await ping(hub)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    try:
        async with hub.scheduling():
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
    """The next fire times of a cron EXPRESSION, with DST notes (no Redis needed)."""
    start = _parse_instant(after) if after else datetime.now(UTC)
    try:
        fires = Schedule(Cron(expression, timezone)).preview(start, count)
    except ValidationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
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


@cli.command()
@click.argument("app", required=False, envvar=APP_ENV)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-worker", is_flag=True, help="Do not run a worker in this process.")
@click.option("--no-scheduler", is_flag=True, help="Do not run a scheduler in this process.")
@click.option("--redis-url", envvar=REDIS_URL_ENV, default=None,
              help=f"Redis to use (env {REDIS_URL_ENV}); none: memory://.")  # fmt: skip
def serve(  # noqa: PLR0917 - click passes every option positionally
    app: str | None,
    host: str,
    port: int,
    no_worker: bool,
    no_scheduler: bool,
    redis_url: str | None,
) -> None:
    """Admin API, worker and scheduler in one process (APP defaults to the demo)."""
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server

    hub = load_hub(app or DEMO_APP, redis_url)
    try:
        settings = Settings(redis_url=hub.url, prefix=hub.prefix)
        secret = jwt_secret(settings)
    except (InsecureSecretError, PydanticValidationError) as exc:
        click.echo(f"error: {str(exc).splitlines()[0]}", err=True)
        sys.exit(2)

    @contextlib.asynccontextmanager
    async def in_process(_: object) -> AsyncIterator[None]:
        await ping(hub)
        async with contextlib.AsyncExitStack() as stack:
            if not no_scheduler:
                await stack.enter_async_context(hub.scheduling())
            if not no_worker:
                await stack.enter_async_context(hub.worker())
            yield
        await hub.aclose()

    web = create_app(hub, settings, lifespan=[in_process])
    base = f"http://{host}:{port}"
    click.echo(f"hub_scheduler {__version__}: dashboard {base}/admin/, API {base}/api/v1")
    click.echo(
        f"  {len(hub.registry)} jobs; worker {'off' if no_worker else 'on'}, "
        f"scheduler {'off' if no_scheduler else 'on'}"
    )
    if hub.url.startswith(MEMORY_URL):
        click.echo(
            "  running on memory:// (nothing is kept; set HUB_SCHEDULER_REDIS_URL for Redis)"
        )
        token = mint_token(secret, "demo-admin", ROLES[0], timedelta(hours=8))
        click.echo(f"  log in with: Authorization: Bearer {token}")
    else:
        click.echo(
            "  log in with a token from: hub-scheduler token create --subject NAME --role ROLE"
        )
    sys.stdout.flush()
    uvicorn.run(web, host=host, port=port, log_level="warning", lifespan="on")


_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_ttl(value: str) -> timedelta:
    number, unit = value[:-1], value[-1:]
    if unit not in _TTL_UNITS or not number.isdigit() or int(number) == 0:
        raise click.BadParameter(f"{value!r} is not a duration like 30m, 8h or 7d")
    return timedelta(seconds=int(number) * _TTL_UNITS[unit])


@cli.group()
def token() -> None:
    """Admin API tokens."""


@token.command("create")
@click.option("--subject", required=True, help="Who the token is for (shown in the audit trail).")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--ttl", default="8h", show_default=True, help="Lifetime: 30m, 8h, 7d ...")
def token_create(subject: str, role: str, ttl: str) -> None:
    """Print a signed JWT for the admin API (secret: HUB_SCHEDULER_JWT_SECRET)."""
    lifetime = _parse_ttl(ttl)
    try:
        secret = jwt_secret(Settings())
    except (InsecureSecretError, PydanticValidationError) as exc:
        click.echo(f"error: {str(exc).splitlines()[0]}", err=True)
        sys.exit(2)
    click.echo(mint_token(secret, subject, role, lifetime))


for _command in admin.COMMANDS:
    cli.add_command(_command)


@schedules.command("list")
@admin.app_options
def schedules_list(app: str, redis_url: str | None, as_json: bool) -> None:
    """Every schedule with its next fire and last outcome."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        return [schedule_json(s) for s in await hub.schedules.list()]

    admin.emit(admin.run(app, redis_url, action), as_json, lambda rows: [
        f"{r['id']:<32}{r['description']:<48}next {r['next_fire']}  last {r['last_outcome']}"
        for r in rows
    ])  # fmt: skip


def main() -> None:
    """Console-script entry point."""
    cli()
