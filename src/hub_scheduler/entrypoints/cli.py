"""The ``hub-scheduler`` command line.

Errors a person can fix (a bad APP path, an unreachable Redis) end in one line on stderr and
exit code 2 — never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

import click

from hub_scheduler import __version__
from hub_scheduler.adapters.redis.connection import is_memory
from hub_scheduler.adapters.taskiq.worker import WorkerSettings
from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.entrypoints.hub import REDIS_URL_ENV, Hub

APP_ENV = "HUB_SCHEDULER_APP"


def load_hub(path: str) -> Hub:
    """The `Hub` named by ``module:attribute`` (``UsageError`` with the reason otherwise)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise click.UsageError(f"APP must look like 'package.module:hub', got {path!r}")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.UsageError(f"cannot import {module_name!r}: {exc}") from None
    finally:
        sys.path.pop(0)
    hub = getattr(module, attribute, None)
    if not isinstance(hub, Hub):
        kind = "nothing" if hub is None else type(hub).__name__
        raise click.UsageError(f"{path!r} must be a hub_scheduler.Hub, found {kind}")
    return hub


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
    hub = load_hub(app)
    if redis_url and hub.url != redis_url:
        hub = hub.with_url(redis_url)
    if is_memory(hub.url):
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
    try:
        await hub.client.ping()
    except Exception as exc:
        raise HubSchedulerError(f"cannot reach Redis at {hub.url}: {type(exc).__name__}") from None
    try:
        await worker.run()
    finally:
        with contextlib.suppress(Exception):
            await hub.aclose()


def main() -> None:
    """Console-script entry point."""
    cli()
