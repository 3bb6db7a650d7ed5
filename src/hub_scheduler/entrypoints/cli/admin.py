"""Operator commands of the CLI: jobs, queue, cancel, runs (and bulk actions), dead letters,
history, clean, check, workflows.

Each command loads the app's `Hub` (``--app module:attribute``, default the demo, env
``HUB_SCHEDULER_APP``), opens its backend (``--url``, env ``HUB_SCHEDULER_URL``), prints a
table (or JSON with ``--json``) and exits 0. Actions go through `AdminService`, like the API's
and the dashboard's, so each writes one audit entry (channel ``cli``, actor ``--actor`` or the
OS user). Bad input exits 2 with one line on stderr; an unreachable backend exits 1.

The JSON shapes are the admin API's (`hub_scheduler.entrypoints.api.schemas`), imported when
a command runs: pydantic is not loaded for ``--help``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from hub_scheduler.domain.admin import BULK_LIMIT, BulkAction, RunSelection, every_page
from hub_scheduler.domain.model import FINAL_STATES, Priority, RunState, RunTrigger
from hub_scheduler.entrypoints.cli.common import (
    EXIT_UNAVAILABLE,
    FiniteFloatRange,
    actor_option,
    app_options,
    cli_actor,
    emit,
    fail,
    run,
)

if TYPE_CHECKING:
    from hub_scheduler.hub import Hub

MAX_CLEAN_DAYS = 3650


def _runs_table(runs: list[dict[str, Any]]) -> list[str]:
    out = [f"{'RUN':<18}{'JOB':<28}{'STATE':<17}{'ATT':<5}ENQUEUED"]
    out += [
        f"{r['id']:<18}{r['job']:<28}{r['state']:<17}{r['attempt']:<5}{r['enqueued_at']}"
        for r in runs
    ]
    return out


# --- jobs ---------------------------------------------------------------------------------


@click.group()
def jobs() -> None:
    """List, inspect, trigger, pause and resume jobs."""


@jobs.command("list")
@app_options
def jobs_list(app: str, url: str | None, as_json: bool) -> None:
    """Every registered job: priority, pause flag, schedules, last run."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        from hub_scheduler.entrypoints.api.schemas import summary_json  # noqa: PLC0415

        summaries = await every_page(hub.admin.job_summaries_page)
        return [summary_json(s) for s in summaries]

    emit(run(app, url, action), as_json, lambda rows: [
        f"{r['name']:<28}{r['priority']:<10}{'paused' if r['paused'] else '':<8}"
        f"{(r['last_run'] or {}).get('state', '-'):<11}"
        f"{'; '.join(s['description'] for s in r['schedules'])}" for r in rows
    ])  # fmt: skip


@jobs.command("show")
@click.argument("name")
@app_options
def jobs_show(name: str, app: str, url: str | None, as_json: bool) -> None:
    """One job, its schedules and its latest runs."""

    async def action(hub: Hub) -> dict[str, Any]:
        from hub_scheduler.entrypoints.api.schemas import run_json, summary_json  # noqa: PLC0415

        [summary] = await hub.admin.job_summaries([name])
        body = summary_json(summary)
        body["recent_runs"] = [
            run_json(r) for r in (await hub.history.list(job=name, limit=10)).items
        ]
        return body

    emit(run(app, url, action), as_json, lambda d: [
        f"{d['name']}: {d['description']} (priority {d['priority']}"
        f"{', paused' if d['paused'] else ''})",
        *[f"  {s['id']}: {s['description']}, next {s['next_fire']}" for s in d["schedules"]],
        *_runs_table(d["recent_runs"]),
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
@click.option("--delay", type=FiniteFloatRange(0, 365 * 86400), default=None, help="Seconds.")
@click.option("--idempotency-key", default=None, help="Enqueue at most once per key and window.")
@app_options
@actor_option
def jobs_trigger(  # noqa: PLR0917 - click passes one argument per option
    name: str,
    payload: str | None,
    priority: str | None,
    delay: float | None,
    idempotency_key: str | None,
    app: str,
    url: str | None,
    as_json: bool,
    actor: str | None,
) -> None:
    """Enqueue a run of NAME now (or after --delay); prints its run id."""
    body = _payload(payload)

    async def action(hub: Hub) -> dict[str, str]:
        run_id = await hub.admin.trigger(
            cli_actor(actor),
            name,
            body,
            priority=priority,
            delay=timedelta(seconds=delay) if delay else None,
            idempotency_key=idempotency_key,
        )
        return {"run_id": run_id}

    emit(run(app, url, action), as_json, lambda d: [d["run_id"]])


def _job_pause_command(*, paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"

    @click.argument("name")
    @app_options
    @actor_option
    def command(name: str, app: str, url: str | None, as_json: bool, actor: str | None) -> None:
        async def action(hub: Hub) -> dict[str, Any]:
            await hub.admin.set_job_paused(cli_actor(actor), name, paused=paused)
            return {"name": name, "paused": paused}

        emit(run(app, url, action), as_json, lambda d: [f"{d['name']}: {verb}d"])

    command.__doc__ = (
        "Pause job NAME: its runs wait in order; running ones finish."
        if paused
        else "Resume job NAME."
    )
    return click.command(verb)(command)


jobs.add_command(_job_pause_command(paused=True))
jobs.add_command(_job_pause_command(paused=False))


# --- queue --------------------------------------------------------------------------------


@click.group()
def queue() -> None:
    """Queue health, pause and resume."""


def _health_lines(d: dict[str, Any]) -> list[str]:
    return [
        f"status: {d['status']}",
        f"waiting {d['waiting']} ({', '.join(f'{k} {v}' for k, v in d['depth'].items())}), "
        f"delayed {d['delayed']}, active {d['active']}, dead letters {d['dead_letters']}",
        f"paused: {'yes' if d['paused'] else 'no'}; jobs: {', '.join(d['paused_jobs']) or '-'}",
        f"workers: {len(d['workers'])}; schedulers: {len(d['schedulers'])}",
    ]


@queue.command("status")
@app_options
def queue_status(app: str, url: str | None, as_json: bool) -> None:
    """Depth per priority, delayed, active, dead letters, pause flags, workers, schedulers."""

    async def action(hub: Hub) -> dict[str, Any]:
        from hub_scheduler.entrypoints.api.schemas import health_json  # noqa: PLC0415

        return health_json(await hub.admin.queue_health())

    emit(run(app, url, action), as_json, _health_lines)


def _queue_pause_command(*, paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"

    @app_options
    @actor_option
    def command(app: str, url: str | None, as_json: bool, actor: str | None) -> None:
        async def action(hub: Hub) -> dict[str, bool]:
            await hub.admin.set_queue_paused(cli_actor(actor), paused=paused)
            return {"paused": paused}

        emit(run(app, url, action), as_json, lambda _: [f"queue {verb}d"])

    command.__doc__ = (
        "Pause the whole queue: nothing new starts; running jobs finish."
        if paused
        else "Resume the whole queue."
    )
    return click.command(verb)(command)


queue.add_command(_queue_pause_command(paused=True))
queue.add_command(_queue_pause_command(paused=False))


# --- runs ---------------------------------------------------------------------------------


@click.command("cancel")
@click.argument("run_id")
@app_options
@actor_option
def cancel(run_id: str, app: str, url: str | None, as_json: bool, actor: str | None) -> None:
    """Cancel run RUN_ID: a waiting one at once; a running one is asked to stop (it ends
    cancelled once its handler stops, unless it succeeds first)."""

    async def action(hub: Hub) -> dict[str, Any]:
        from hub_scheduler.entrypoints.api.schemas import run_json  # noqa: PLC0415

        return run_json(await hub.admin.cancel(cli_actor(actor), run_id))

    def lines(d: dict[str, Any]) -> list[str]:
        if d["state"] == "active" and d.get("cancel_requested_at"):
            return [f"{d['id']}: cancel requested (running; it stops within its worker's grace)"]
        return [f"{d['id']}: {d['state']}"]

    emit(run(app, url, action), as_json, lines)


def _run_lines(r: dict[str, Any]) -> list[str]:
    out = [
        f"run {r['id']}: {r['job']} {r['state']}, attempt {r['attempt']}, stalls {r['stalls']}",
        f"enqueued {r['enqueued_at']}, started {r['started_at'] or '-'}, "
        f"finished {r['finished_at'] or '-'}",
    ]
    if r.get("progress"):
        p = r["progress"]
        done = "-" if p["fraction"] is None else f"{p['fraction']:.0%}"
        out.append(f"progress {done} {p['message']}".rstrip() + f" (at {p['at']})")
    if r.get("result_stored_at"):
        out.append(f"result {json.dumps(r['result'], ensure_ascii=False)}")
    if r["attempts_dropped"]:
        out.append(f"({r['attempts_dropped']} earlier attempts not kept)")
    out.append(f"{'#':<4}{'OUTCOME':<13}{'STARTED':<30}{'TOOK':>10}  {'WORKER':<28}NEXT TRY")
    for a in r["attempts"]:
        took = f"{a['duration_seconds']:.3f}s"
        out.append(
            f"{a['number']:<4}{a['outcome']:<13}{a['started_at']:<30}{took:>10}  "
            f"{a['worker'] or '-':<28}{a['retry_at'] or '-'}"
        )
        if a["error"]:
            out.append(f"    {a['error']['type']}: {a['error']['message']}")
            out += [f"    | {line}" for line in a["error"]["traceback"].splitlines()]
    return out


@click.group()
def runs() -> None:
    """Inspect runs."""


@runs.command("show")
@click.argument("run_id")
@app_options
def runs_show(run_id: str, app: str, url: str | None, as_json: bool) -> None:
    """Run RUN_ID with every attempt it kept: outcome, worker, duration, error and
    traceback, and when the next one was due; its latest progress and its result."""

    async def action(hub: Hub) -> dict[str, Any]:
        from hub_scheduler.entrypoints.api.schemas import run_json  # noqa: PLC0415

        found = await hub.history.get(run_id)
        results = hub.backend.results
        return run_json(found, await results.result(run_id), await results.progress(run_id))

    emit(run(app, url, action), as_json, _run_lines)


@runs.command("bulk")
@click.argument("what", metavar="ACTION", type=click.Choice([a.value for a in BulkAction]))
@click.option("--id", "run_ids", multiple=True, help="This run (repeatable).")
@click.option("--job", default=None, help="Runs of this job.")
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in RunState]),
              help="Runs in this state (repeatable).")  # fmt: skip
@click.option("--trigger", type=click.Choice([t.value for t in RunTrigger]), default=None)
@click.option("--limit", type=click.IntRange(1, BULK_LIMIT), default=BULK_LIMIT,
              show_default=True)  # fmt: skip
@click.option("--yes", is_flag=True, help="Act; without it, only say how many runs it would.")
@app_options
@actor_option
def runs_bulk(  # noqa: PLR0917 - click passes one argument per option
    what: str,
    run_ids: tuple[str, ...],
    job: str | None,
    states: tuple[str, ...],
    trigger: str | None,
    limit: int,
    yes: bool,
    app: str,
    url: str | None,
    as_json: bool,
    actor: str | None,
) -> None:
    """Cancel, retry or delete every run the options select (cancel: runs not finished;
    retry, delete: dead letters), as one audited action. Without --yes it only counts them."""
    action_kind = BulkAction(what)
    selection = RunSelection(
        run_ids=run_ids or None,
        job=job,
        states=frozenset(RunState(s) for s in states) or None,
        trigger=RunTrigger(trigger) if trigger else None,
    )

    async def action(hub: Hub) -> dict[str, Any]:
        if not yes:
            count, more = await hub.admin.bulk_preview(action_kind, selection, limit=limit)
            return {"action": what, "would": count, "more": more}
        result = await hub.admin.bulk(cli_actor(actor), action_kind, selection, limit=limit)
        return {"action": what, "done": result.done, "skipped": result.skipped,
                "more": result.more, "new_run_ids": list(result.new_run_ids)}  # fmt: skip

    def lines(d: dict[str, Any]) -> list[str]:
        more = " (more match: run it again)" if d["more"] else ""
        if "would" in d:
            return [f"would {d['action']} {d['would']} runs{more}; pass --yes to do it"]
        skipped = f", {d['skipped']} skipped (they had moved on)" if d["skipped"] else ""
        return [f"{d['action']}: {d['done']} runs{skipped}{more}"]

    emit(run(app, url, action), as_json, lines)


@click.command("history")
@click.option("--job", default=None)
@click.option("--status", type=click.Choice([s.value for s in RunState]), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@app_options
def history(  # noqa: PLR0917 - click passes one argument per option
    job: str | None, status: str | None, limit: int, app: str, url: str | None, as_json: bool
) -> None:
    """Recent runs, newest first."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        from hub_scheduler.entrypoints.api.schemas import run_json  # noqa: PLC0415

        if job is not None:
            hub.registry.get(job)
        states = frozenset({RunState(status)}) if status else None
        page = await hub.history.list(job=job, states=states, limit=limit)
        return [run_json(r) for r in page.items]

    emit(run(app, url, action), as_json, _runs_table)


@click.command("clean")
@click.option("--older-than-days", required=True,
              type=FiniteFloatRange(0, MAX_CLEAN_DAYS, min_open=True))  # fmt: skip
@click.option("--state", "states", multiple=True,
              type=click.Choice(sorted(s.value for s in FINAL_STATES)),
              help="Only runs that ended so (repeatable; default: any finished run).")  # fmt: skip
@app_options
@actor_option
def clean(  # noqa: PLR0917 - click passes one argument per option
    older_than_days: float,
    states: tuple[str, ...],
    app: str,
    url: str | None,
    as_json: bool,
    actor: str | None,
) -> None:
    """Delete finished runs enqueued more than --older-than-days ago."""

    async def action(hub: Hub) -> dict[str, int]:
        removed = await hub.admin.clean_history(
            cli_actor(actor),
            timedelta(days=older_than_days),
            frozenset(RunState(s) for s in states) or None,
        )
        return {"removed": removed}

    emit(run(app, url, action), as_json, lambda d: [f"removed {d['removed']} runs"])


# --- dead letters -------------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """Dead letters: list, retry, delete, purge."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@app_options
def dlq_list(limit: int, app: str, url: str | None, as_json: bool) -> None:
    """Dead runs, newest first, with their last error."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        from hub_scheduler.entrypoints.api.schemas import run_json  # noqa: PLC0415

        return [run_json(r) for r in (await hub.dead_letters.list(limit=limit)).items]

    emit(run(app, url, action), as_json, lambda rows: [
        f"{r['id']:<18}{r['job']:<28}{(r['error'] or {}).get('message', '')}" for r in rows
    ])  # fmt: skip


@dlq.command("retry")
@click.argument("run_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@app_options
@actor_option
def dlq_retry(  # noqa: PLR0917 - click passes one argument per option
    run_id: str | None,
    retry_all: bool,
    app: str,
    url: str | None,
    as_json: bool,
    actor: str | None,
) -> None:
    """Retry RUN_ID (or --all) as new runs; prints the new run ids."""
    if bool(run_id) == retry_all:
        raise click.UsageError("give a RUN_ID or --all")

    async def action(hub: Hub) -> list[str]:
        if retry_all or run_id is None:
            return await hub.admin.retry_all_dead(cli_actor(actor))
        return [await hub.admin.retry_dead(cli_actor(actor), run_id)]

    emit(run(app, url, action), as_json, list)


@dlq.command("delete")
@click.argument("run_id")
@app_options
@actor_option
def dlq_delete(run_id: str, app: str, url: str | None, as_json: bool, actor: str | None) -> None:
    """Forget the dead letter RUN_ID (its run stays in history for the retention)."""

    async def action(hub: Hub) -> dict[str, str]:
        await hub.admin.delete_dead(cli_actor(actor), run_id)
        return {"deleted": run_id}

    emit(run(app, url, action), as_json, lambda d: [f"deleted {d['deleted']}"])


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Confirm: forget every dead letter.")
@app_options
@actor_option
def dlq_purge(yes: bool, app: str, url: str | None, as_json: bool, actor: str | None) -> None:
    """Forget every dead letter (needs --yes)."""
    if not yes:
        raise click.UsageError("purging forgets every dead letter; add --yes to confirm")

    async def action(hub: Hub) -> dict[str, int]:
        return {"removed": await hub.admin.purge_dead(cli_actor(actor))}

    emit(run(app, url, action), as_json, lambda d: [f"removed {d['removed']}"])


# --- health -------------------------------------------------------------------------------


@click.command("check")
@app_options
def check(app: str, url: str | None, as_json: bool) -> None:
    """Health probe: exit 0 when the backend answers and is safe for the queue, 1 when not
    (a Redis whose maxmemory-policy evicts keys drops queued runs).

    It also says whether the queue is ok or degraded (paused, no live worker, or schedules
    without a live scheduler), and what is live.
    """

    async def action(hub: Hub) -> dict[str, Any]:
        health = await hub.admin.queue_health()
        if health.vitals is not None and health.vitals.problems:
            fail(health.vitals.problems[0], EXIT_UNAVAILABLE)
        return {
            "status": health.status.value,
            "workers": len(health.workers),
            "schedulers": len(health.schedulers),
            "paused": health.snapshot.paused,
            "dead_letters": health.snapshot.dead,
        }

    emit(run(app, url, action), as_json, lambda d: [
        f"{d['status']}: {d['workers']} workers, {d['schedulers']} schedulers, "
        f"{d['dead_letters']} dead letters{', queue paused' if d['paused'] else ''}"
    ])  # fmt: skip


# --- workflows ------------------------------------------------------------------------------


def _workflow_json(view: Any) -> dict[str, Any]:
    from hub_scheduler.entrypoints.api.schemas import WorkflowView  # noqa: PLC0415

    return WorkflowView.of(view).model_dump(mode="json")


def _workflow_lines(w: dict[str, Any]) -> list[str]:
    out = [
        f"workflow {w['id']} ({w['name']}): {w['state']}, on failure {w['failure_policy']}",
        f"created {w['created_at']}, finished {w['finished_at'] or '-'}",
        f"{'STEP':<24}{'JOB':<24}{'STATE':<11}{'RUN':<18}AFTER",
    ]
    steps = w["steps"] + ([w["compensation"]] if w["compensation"] else [])
    out += [
        f"{s['name']:<24}{s['job']:<24}{s['state']:<11}{s['run_id'] or '-':<18}"
        f"{', '.join(s['after']) or '-'}"
        for s in steps
    ]
    return out


@click.group()
def workflows() -> None:
    """List, inspect and cancel workflows."""


@workflows.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@app_options
def workflows_list(limit: int, app: str, url: str | None, as_json: bool) -> None:
    """Workflows, newest first, with how many steps are in each state."""

    async def action(hub: Hub) -> list[dict[str, Any]]:
        from hub_scheduler.entrypoints.api.schemas import WorkflowView  # noqa: PLC0415

        page = await hub.admin.workflows(limit=limit)
        return [WorkflowView.from_domain(w).model_dump(mode="json") for w in page.items]

    def lines(items: list[dict[str, Any]]) -> list[str]:
        out = [f"{'WORKFLOW':<21}{'NAME':<24}{'STATE':<11}{'CREATED':<34}STEPS"]
        out += [
            f"{w['id']:<21}{w['name']:<24}{w['state']:<11}{w['created_at']:<34}"
            + ", ".join(f"{n} {state}" for state, n in sorted(w["counts"].items()))
            for w in items
        ]
        return out

    emit(run(app, url, action), as_json, lines)


@workflows.command("show")
@click.argument("workflow_id")
@app_options
def workflows_show(workflow_id: str, app: str, url: str | None, as_json: bool) -> None:
    """Workflow WORKFLOW_ID: each step, its state, its run and what it waits for."""

    async def action(hub: Hub) -> dict[str, Any]:
        return _workflow_json(await hub.admin.workflow(workflow_id))

    emit(run(app, url, action), as_json, _workflow_lines)


@workflows.command("cancel")
@click.argument("workflow_id")
@app_options
@actor_option
def workflows_cancel(
    workflow_id: str, app: str, url: str | None, as_json: bool, actor: str | None
) -> None:
    """Cancel workflow WORKFLOW_ID: steps not started never will, waiting runs are
    cancelled, running ones asked to stop."""

    async def action(hub: Hub) -> dict[str, Any]:
        await hub.admin.cancel_workflow(cli_actor(actor), workflow_id)
        return _workflow_json(await hub.admin.workflow(workflow_id))

    emit(run(app, url, action), as_json, _workflow_lines)


COMMANDS = (jobs, queue, cancel, runs, dlq, history, clean, check, workflows)
