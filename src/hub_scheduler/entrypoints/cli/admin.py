"""Operator commands of the CLI: jobs, queue, dead letters, schedules, history, clean, check.

Each command loads the app's `Hub` (``--app module:attribute``, default the demo, env
``HUB_SCHEDULER_APP``), talks to its Redis, prints a table (or JSON with ``--json``) and
exits 0; bad input exits 2 with one line on stderr, an unreachable store exits 1.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    HubSchedulerError,
    NotFoundError,
    ValidationError,
)
from hub_scheduler.domain.model import Priority, RunState
from hub_scheduler.entrypoints.api.schemas import run_json, schedule_json, snapshot_json
from hub_scheduler.hub import MEMORY_URL, REDIS_URL_ENV, Hub

T = TypeVar("T")
APP_ENV = "HUB_SCHEDULER_APP"
DEMO_APP = "hub_scheduler.demo:hub"


def app_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--app``, ``--redis-url`` and ``--json`` for an operator command."""
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)
    command = click.option(
        "--redis-url", envvar=REDIS_URL_ENV, default=None, help=f"Redis (env {REDIS_URL_ENV})."
    )(command)
    return click.option(
        "--app", envvar=APP_ENV, default=DEMO_APP, show_default=True,
        help="module:attribute naming your Hub (env HUB_SCHEDULER_APP).",
    )(command)  # fmt: skip


def load_hub(path: str, redis_url: str | None = None) -> Hub:
    """The `Hub` named by ``module:attribute`` (``UsageError`` with the reason otherwise),
    moved to `redis_url` when one is given."""
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
    if redis_url and hub.url != redis_url:
        return hub.with_backend(redis_url)
    return hub


async def ping(hub: Hub) -> None:
    """`HubSchedulerError` naming the URL when the hub's store does not answer."""
    try:
        await hub.ping()
    except BackendUnavailableError as exc:
        raise HubSchedulerError(f"cannot reach {hub.url} ({exc.cause})") from None


def run(app: str, redis_url: str | None, action: Callable[[Hub], Awaitable[T]]) -> T:
    """Load the hub, run `action` against its store, map errors to exit codes."""
    hub = load_hub(app, redis_url)
    if hub.url.startswith(MEMORY_URL):
        click.echo("note: memory:// belongs to one process; set HUB_SCHEDULER_REDIS_URL", err=True)

    async def main() -> T:
        try:
            await ping(hub)
            return await action(hub)
        finally:
            await hub.aclose()

    try:
        return asyncio.run(main())
    except (ValidationError, NotFoundError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except HubSchedulerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def emit(data: Any, as_json: bool, lines: Callable[[Any], list[str]]) -> None:
    """Print `data` as JSON or as the given human lines."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        for line in lines(data):
            click.echo(line)


def _runs_table(runs: list[dict[str, Any]]) -> list[str]:
    out = [f"{'RUN':<18}{'JOB':<28}{'STATE':<17}{'ATT':<5}ENQUEUED"]
    out += [
        f"{r['id']:<18}{r['job']:<28}{r['state']:<17}{r['attempt']:<5}{r['enqueued_at']}"
        for r in runs
    ]
    return out


@click.group()
def jobs() -> None:
    """List, inspect, trigger, pause and resume jobs."""


@jobs.command("list")
@app_options
def jobs_list(app: str, redis_url: str | None, as_json: bool) -> None:
    """Every registered job with its schedules and pause flag."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        paused = (await hub.queue.snapshot()).paused_jobs
        return [
            {
                "name": job.definition.name,
                "priority": job.definition.priority.name.lower(),
                "schedules": [s.describe() for s in job.definition.schedules],
                "paused": job.definition.name in paused,
            }
            for job in hub.registry
        ]

    emit(run(app, redis_url, action), as_json, lambda rows: [
        f"{r['name']:<28}{r['priority']:<10}{'paused' if r['paused'] else '':<8}"
        f"{'; '.join(r['schedules'])}" for r in rows
    ])  # fmt: skip


@jobs.command("show")
@click.argument("name")
@app_options
def jobs_show(name: str, app: str, redis_url: str | None, as_json: bool) -> None:
    """One job and its latest runs."""

    async def action(hub: Hub) -> dict[str, Any]:
        definition = hub.registry.get(name).definition
        runs = (await hub.history.list(job=name, limit=10)).items
        return {
            "name": name,
            "description": definition.description,
            "priority": definition.priority.name.lower(),
            "schedules": [schedule_json(s) for s in await hub.schedules.list(job=name)],
            "runs": [run_json(r) for r in runs],
        }

    emit(run(app, redis_url, action), as_json, lambda d: [
        f"{d['name']}: {d['description']} (priority {d['priority']})",
        *[f"  {s['id']}: {s['description']}, next {s['next_fire']}" for s in d["schedules"]],
        *_runs_table(d["runs"]),
    ])  # fmt: skip


def _payload(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--payload") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--payload")
    return value


@jobs.command("trigger")
@click.argument("name")
@click.option("--payload", default=None, help="A JSON object for the run.")
@click.option("--priority", type=click.Choice([p.name.lower() for p in Priority]), default=None)
@click.option("--delay", type=click.FloatRange(0, 365 * 86400), default=None, help="Seconds.")
@app_options
def jobs_trigger(  # noqa: PLR0917 - click passes one argument per option
    name: str,
    payload: str | None,
    priority: str | None,
    delay: float | None,
    app: str,
    redis_url: str | None,
    as_json: bool,
) -> None:
    """Enqueue a run of NAME now (or after --delay); prints its run id."""
    body = _payload(payload)

    async def action(hub: Hub) -> dict[str, str]:
        run_id = await hub.enqueue(
            name, body, priority=priority, delay=timedelta(seconds=delay) if delay else None
        )
        return {"run_id": run_id}

    emit(run(app, redis_url, action), as_json, lambda d: [d["run_id"]])


def _pause_command(verb: str) -> click.Command:
    @click.argument("name")
    @app_options
    def command(name: str, app: str, redis_url: str | None, as_json: bool) -> None:
        async def action(hub: Hub) -> dict[str, Any]:
            hub.registry.get(name)
            await (hub.queue.pause(name) if verb == "pause" else hub.queue.resume(name))
            return {"name": name, "paused": verb == "pause"}

        emit(run(app, redis_url, action), as_json, lambda d: [f"{d['name']}: {verb}d"])

    command.__doc__ = f"{verb.capitalize()} job NAME."
    return click.command(verb)(command)


jobs.add_command(_pause_command("pause"))
jobs.add_command(_pause_command("resume"))


@click.group()
def queue() -> None:
    """Queue health, pause and resume."""


@queue.command("status")
@app_options
def queue_status(app: str, redis_url: str | None, as_json: bool) -> None:
    """Depth per priority, delayed, active, dead letters, pause flags, workers."""

    async def action(hub: Hub) -> dict[str, Any]:
        return snapshot_json(
            await hub.queue.snapshot(), await hub.presence.workers(hub.clock.now())
        )

    emit(run(app, redis_url, action), as_json, lambda d: [
        f"waiting {d['waiting']} ({', '.join(f'{k} {v}' for k, v in d['depth'].items())}), "
        f"delayed {d['delayed']}, active {d['active']}, dead letters {d['dead_letters']}",
        f"paused: {'yes' if d['paused'] else 'no'}; jobs: {', '.join(d['paused_jobs']) or '-'}",
        f"workers: {len(d['workers'])}",
    ])  # fmt: skip


def _queue_toggle(verb: str) -> click.Command:
    @app_options
    def command(app: str, redis_url: str | None, as_json: bool) -> None:
        async def action(hub: Hub) -> dict[str, bool]:
            await (hub.queue.pause() if verb == "pause" else hub.queue.resume())
            return {"paused": verb == "pause"}

        emit(run(app, redis_url, action), as_json, lambda _: [f"queue {verb}d"])

    command.__doc__ = f"{verb.capitalize()} the whole queue."
    return click.command(verb)(command)


queue.add_command(_queue_toggle("pause"))
queue.add_command(_queue_toggle("resume"))


@click.group()
def dlq() -> None:
    """Dead letters: list, retry, purge."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@app_options
def dlq_list(limit: int, app: str, redis_url: str | None, as_json: bool) -> None:
    """Dead runs, newest first, with their last error."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        return [run_json(r) for r in (await hub.dead_letters.list(limit=limit)).items]

    emit(run(app, redis_url, action), as_json, lambda rows: [
        f"{r['id']:<18}{r['job']:<28}{(r['error'] or {}).get('message', '')}" for r in rows
    ])  # fmt: skip


@dlq.command("retry")
@click.argument("run_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@app_options
def dlq_retry(
    run_id: str | None, retry_all: bool, app: str, redis_url: str | None, as_json: bool
) -> None:
    """Retry RUN_ID (or --all) as new runs; prints the new run ids."""
    if bool(run_id) == retry_all:
        raise click.UsageError("give a RUN_ID or --all")

    async def action(hub: Hub) -> list[str]:
        if retry_all:
            return list(await hub.dead_letters.retry_all())
        assert run_id is not None
        return [await hub.dead_letters.retry(run_id)]

    emit(run(app, redis_url, action), as_json, list)


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Confirm: forget every dead letter.")
@app_options
def dlq_purge(yes: bool, app: str, redis_url: str | None, as_json: bool) -> None:
    """Forget every dead letter (needs --yes)."""
    if not yes:
        raise click.UsageError("purging forgets every dead letter; add --yes to confirm")

    async def action(hub: Hub) -> dict[str, int]:
        return {"removed": await hub.dead_letters.purge()}

    emit(run(app, redis_url, action), as_json, lambda d: [f"removed {d['removed']}"])


@click.command("history")
@click.option("--job", default=None)
@click.option("--status", type=click.Choice([s.value for s in RunState]), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@app_options
def history(  # noqa: PLR0917 - click passes one argument per option
    job: str | None, status: str | None, limit: int, app: str, redis_url: str | None, as_json: bool
) -> None:
    """Recent runs, newest first."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        if job is not None:
            hub.registry.get(job)
        states = frozenset({RunState(status)}) if status else None
        page = await hub.history.list(job=job, states=states, limit=limit)
        return [run_json(r) for r in page.items]

    emit(run(app, redis_url, action), as_json, _runs_table)


@click.command("clean")
@click.option("--older-than-days", type=click.FloatRange(min=0, min_open=True), required=True)
@app_options
def clean(older_than_days: float, app: str, redis_url: str | None, as_json: bool) -> None:
    """Delete finished runs older than --older-than-days."""

    async def action(hub: Hub) -> dict[str, int]:
        cut = hub.clock.now() - timedelta(days=older_than_days)
        return {"removed": await hub.history.clean(cut)}

    emit(run(app, redis_url, action), as_json, lambda d: [f"removed {d['removed']} runs"])


@click.command("check")
@app_options
def check(app: str, redis_url: str | None, as_json: bool) -> None:
    """Health probe: exit 0 when Redis answers (and say what is live), 1 when it does not."""

    async def action(hub: Hub) -> dict[str, Any]:
        snapshot = await hub.queue.snapshot()
        workers = await hub.presence.workers(hub.clock.now())
        schedulers = await hub.presence.schedulers(hub.clock.now())
        return {
            "status": "ok",
            "workers": len(workers),
            "schedulers": len(schedulers),
            "dead_letters": snapshot.dead,
        }

    emit(run(app, redis_url, action), as_json, lambda d: [
        f"ok: {d['workers']} workers, {d['schedulers']} schedulers, "
        f"{d['dead_letters']} dead letters"
    ])  # fmt: skip


COMMANDS = (jobs, queue, dlq, history, clean, check)
