"""The dashboard's pages, fragments and actions, one controller each.

Fragments render the API's views (`hub_scheduler.entrypoints.api.schemas`), so a run or a
schedule looks the same here as in the API. Actions call the same use cases as the API
(``hub.admin``) with a ``dashboard`` actor, so the audit trail names them alike.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import attrs
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.params import Body, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK
from markupsafe import escape

from hub_scheduler.domain.admin import Action, Actor, AdminService, BulkAction, RunSelection
from hub_scheduler.domain.depth import RESOLUTIONS, DepthPoint
from hub_scheduler.domain.errors import InvalidScheduleError, RunNotFoundError, ValidationError
from hub_scheduler.domain.model import FINAL_STATES, RunState, RunTrigger
from hub_scheduler.domain.ports import WindowStats
from hub_scheduler.domain.schedule import Cron, Every, Schedule, ScheduleTrigger, load_timezone
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dashboard.site import (
    COOKIE,
    Session,
    SessionDep,
    SiteDep,
    ViewerDep,
)
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep, HubDep
from hub_scheduler.entrypoints.api.paging import PageCursor
from hub_scheduler.entrypoints.api.params import Id, Name
from hub_scheduler.entrypoints.api.schemas import (
    AuditEntryView,
    JobSummaryView,
    health_json,
    run_json,
    schedule_json,
    slot_json,
    stats_json,
)
from hub_scheduler.entrypoints.api.security import ADMIN, ROLES
from hub_scheduler.hub import Hub

SESSION_LENGTH = timedelta(hours=12)
RECENT_RUNS = 25
DEAD_SHOWN = 50
SLOTS_SHOWN = 50
#: Resolved alerts the overview shows under the firing ones.
RECENT_ALERTS = 5
#: How long the overview's Mute button mutes an alert.
MUTE_FOR = timedelta(hours=1)
#: The share of failed attempts over 24 h above which the overview flags a job (the
#: seed's alert threshold).
FAILING = 0.10
#: How recent the runs page's runs may be asked to be (``?within=``).
RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
#: The overview's chart ranges (``?range=``), with their names in words.
CHART_RANGES = {"1h": "last hour", "24h": "last 24 h", "7d": "last 7 days"}
#: ``?range=``, under another name in the handler: ``range`` is a builtin.
RangeQuery = Annotated[str, QueryParameter(name="range", max_length=10)]
#: Runs an admin may tick on the runs page for one bulk action (a page's worth, twice),
#: and what a run id may be.
BULK_PICKED = 100
RUN_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
#: What a schedule id may be (as the API's schedule body says).
SCHEDULE_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
#: Upcoming fires the job page shows per schedule.
NEXT_FIRES = 5
#: How many times its 7-day p95 a job's 24 h p95 must be for the overview to flag it, and
#: the attempts in 7 days it needs for the comparison to mean anything.
SLOWER = 2
BASELINE_RUNS = 20
#: Audit entries (and runs) per page.
PAGE_SIZE = 50
#: Jobs per page of the overview's jobs table.
JOBS_PAGE = 50
JobQuery = Annotated[str, QueryParameter(max_length=100)]
TextQuery = Annotated[str, QueryParameter(max_length=100)]
#: A page's cursor (empty: the first page); the store refuses one it did not hand out
#: (`InvalidCursorError`, a 400). Not the API's pattern: a sharded store's cursors are longer.
CursorQuery = Annotated[str, QueryParameter(max_length=2000)]
#: ``?actor=``, under another name in the handler: ``actor`` is the acting admin there.
#: ``?state=``, under another name in the handler: Litestar reserves ``state``.
StateQuery = Annotated[str, QueryParameter(name="state", max_length=20)]
ActorQuery = Annotated[str, QueryParameter(name="actor", max_length=100)]
StatusQuery = Annotated[str, QueryParameter(max_length=20)]
#: What an action answers: nothing to swap, and a `refresh` event for every fragment.
REFRESH = {"HX-Trigger": "refresh"}


def _refresh() -> Response[str]:
    return Response("", headers=REFRESH)


def _admin_only(viewer: Session) -> None:
    """Refuse (403) a page or fragment only SystemAdmin may read."""
    if not viewer.can_act:
        raise PermissionDeniedException(f"the {ADMIN} role is required")


async def _audit_context(
    admin: AdminService, actor: str, action: str, cursor: str
) -> dict[str, Any]:
    """What the audit page and its fragment show: a page of entries by actor and action."""
    page = await admin.audit_trail(
        actor=actor or None, action=action or None, cursor=cursor or None, limit=PAGE_SIZE
    )
    filters = {"actor": actor, "action": action}
    return {
        "entries": [AuditEntryView.from_domain(e).model_dump(mode="json") for e in page.items],
        "next_cursor": page.next_cursor,
        "scanned": page.scanned,
        "cursor": cursor,
        "filters": filters,
        "filtered": bool(actor or action),
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "actions": [a.value for a in Action],
    }


def _filters(hub: Hub, *, job: str, state: str, trigger: str, within: str) -> dict[str, str]:
    """The runs page's filters, unknown values dropped."""
    return {
        "job": job if job in hub.registry else "",
        "state": state if state in set(RunState) else "",
        "trigger": trigger if trigger in set(RunTrigger) else "",
        "within": within if within in RANGES else "",
    }


async def _runs_context(
    hub: Hub, *, job: str, state: str, trigger: str, within: str, cursor: str
) -> dict[str, Any]:
    """What the runs page and its list show: a page of runs by job, state, trigger and how
    recent (unknown values are ignored)."""
    filters = _filters(hub, job=job, state=state, trigger=trigger, within=within)
    page = await hub.admin.find_runs(
        job=filters["job"] or None,
        states=frozenset({RunState(filters["state"])}) if filters["state"] else None,
        trigger=RunTrigger(filters["trigger"]) if filters["trigger"] else None,
        since=hub.clock.now() - RANGES[filters["within"]] if filters["within"] else None,
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    return {
        "runs": [run_json(r) for r in page.items],
        "next_cursor": page.next_cursor,
        "scanned": page.scanned,
        "cursor": cursor,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
    }


def _selection(hub: Hub, filters: dict[str, str]) -> RunSelection:
    """The runs page's filters (already checked by `_runs_context`) as a bulk selection."""
    return RunSelection(
        job=filters["job"] or None,
        states=frozenset({RunState(filters["state"])}) if filters["state"] else None,
        trigger=RunTrigger(filters["trigger"]) if filters["trigger"] else None,
        enqueued_after=hub.clock.now() - RANGES[filters["within"]] if filters["within"] else None,
    )


async def _bulk_offers(hub: Hub, filters: dict[str, str]) -> list[dict[str, Any]]:
    """For a filtered runs page: each bulk action that would act on some of the runs the
    filter matches, with how many (what its confirmation states)."""
    if not any(filters.values()):
        return []  # "everything" is not offered: filter first
    offers = []
    selection = _selection(hub, filters)
    for action, label in ((BulkAction.CANCEL, "Cancel"), (BulkAction.RETRY, "Retry"),
                          (BulkAction.DELETE, "Delete")):  # fmt: skip
        count, more = await hub.admin.bulk_preview(action, selection)
        if count:
            offers.append({"action": action.value, "label": label, "count": count, "more": more})
    return offers


async def _bulk(
    request: Request[Any, Any, Any],
    hub: Hub,
    actor: Actor,
    action: BulkAction,
    filters: dict[str, str],
) -> Response[str]:
    """A bulk action on the runs ticked (the form's ``run_id`` fields), else on everything
    the filter matches; the answer says what was done (and what had moved on)."""
    form = await request.form()
    picked = [str(v) for v in form.getall("run_id")] if "run_id" in form else []
    if len(picked) > BULK_PICKED or any(not RUN_ID.fullmatch(i) for i in picked):
        raise ValidationException(f"tick 1 to {BULK_PICKED} runs")
    selection = RunSelection(run_ids=tuple(picked)) if picked else _selection(hub, filters)
    result = await hub.admin.bulk(actor, action, selection)
    said = f"{action.value}: {result.done} done"
    if result.skipped:
        said += f", {result.skipped} skipped (they moved on meanwhile)"
    others = len(picked) - result.done - result.skipped
    if picked and others > 0:
        said += f", {others} of those ticked not in a state this applies to"
    return Response(
        f"<p id='bulk-result'>{escape(said)}.</p>", media_type=MediaType.HTML, headers=REFRESH
    )


async def _run_context(hub: Hub, run_id: str) -> dict[str, Any]:
    """A run with its error, attempts, payload, result and progress."""
    run = await hub.history.get(run_id)
    stored = await hub.backend.results.result(run_id)
    data = run_json(run, stored, await hub.progress(run_id))
    return {
        "r": data,
        "payload": json.dumps(data["payload"], indent=2),
        "result": None if stored is None else json.dumps(stored.value, indent=2),
        "live": run.state not in FINAL_STATES,
    }


async def _job_context(hub: Hub, name: str, cursor: str) -> dict[str, Any]:
    """One job: its definition, schedules with their next fires, statistics and runs."""
    [summary] = await hub.admin.job_summaries([name])
    definition = summary.job.definition
    now = hub.clock.now()
    schedules = []
    for state in summary.schedules:
        item = schedule_json(state)
        trigger = state.schedule.trigger
        item["cron"] = trigger.expression if isinstance(trigger, Cron) else None
        item["next"] = state.schedule.preview(now, NEXT_FIRES) if state.next_fire else []
        schedules.append(item)
    raw_stats = await hub.stats.job(name, now, trend_hours=24 * 7)
    stats = stats_json(raw_stats)
    page = await hub.history.list(job=name, cursor=cursor or None, limit=PAGE_SIZE)
    week = raw_stats.hourly
    outcomes = {
        "succeeded": [h.succeeded for h in week],
        "failed": [h.failed for h in week],
        "dead": [h.dead for h in week],
    }
    chart = {
        "x": [int(h.hour.timestamp()) for h in week],
        "unit": "attempts per hour",
        "series": [{"label": k, "values": v} for k, v in outcomes.items()],
    }
    retry = definition.retry
    return {
        "job": JobSummaryView.from_domain(summary).model_dump(mode="json"),
        "retry": {
            "max_retries": retry.max_retries,
            "base_delay": retry.base_delay.total_seconds(),
            "factor": retry.factor,
            "max_delay": retry.max_delay.total_seconds(),
        },
        "schedules": schedules,
        "windows": stats["windows"],
        "last_success": stats["last_success"],
        "week_chart": chart,
        "week_totals": {k: sum(v) for k, v in outcomes.items()},
        "runs": [run_json(r) for r in page.items],
        "next_cursor": page.next_cursor,
        "cursor": cursor,
    }


def _sparkline(values: list[int], height: int = 20, step: int = 4) -> str:
    """An SVG polyline's points for `values` (one per hour), scaled to `height`."""
    top = max(values) or 1
    return " ".join(
        f"{i * step},{height - round(v * (height - 2) / top) - 1}" for i, v in enumerate(values)
    )


def _trend(
    name: str, runs: list[int], bad: list[int], day: WindowStats, week: WindowStats
) -> dict[str, Any]:
    """One job's row of the overview's trends: sparklines of runs and failures per hour,
    p50/p95 over 24 h against the 7-day p95, and the flags (failure rate past 10 %, a 24 h
    p95 more than twice the 7-day one with enough runs to tell)."""
    failures = day.failed + day.dead
    rate = failures / day.finished if day.finished else None
    slower = (
        day.p95 is not None
        and week.p95 is not None
        and week.finished >= BASELINE_RUNS
        and day.p95 > SLOWER * week.p95
    )
    return {
        "job": name,
        "runs": sum(runs),
        "failures": failures,
        "rate": rate,
        "runs_line": _sparkline(runs),
        "bad_line": _sparkline(bad),
        "p50": day.p50.total_seconds() if day.p50 else None,
        "p95": day.p95.total_seconds() if day.p95 else None,
        "week_p95": week.p95.total_seconds() if week.p95 else None,
        "failing": rate is not None and rate > FAILING,
        "slower": slower,
    }


def _per_minute(points: list[DepthPoint], now: datetime) -> dict[str, Any]:
    """The last hour's attempts per minute: the differences of the depth samples' running
    counts between neighbouring minutes (None where a sample is missing, or the counts
    went back: the store was emptied)."""
    by_minute = {p.at: p for p in points}
    step = RESOLUTIONS["1h"].step
    last = RESOLUTIONS["1h"].bucket(now)
    minutes = [last - step * i for i in reversed(range(1, 61))]
    succeeded: list[int | None] = []
    failed: list[int | None] = []
    for minute in minutes:
        here, then = by_minute.get(minute), by_minute.get(minute + step)
        good = bad = None
        if here is not None and then is not None:
            good, bad = then.succeeded - here.succeeded, then.failed - here.failed
            if good < 0 or bad < 0:
                good = bad = None
        succeeded.append(good)
        failed.append(bad)
    return {
        "x": [int(m.timestamp()) for m in minutes],
        "unit": "attempts per minute",
        "series": [
            {"label": "succeeded", "values": succeeded},
            {"label": "failed (retried or dead)", "values": failed},
        ],
    }


def _depth_chart(
    points: list[DepthPoint], minutes: list[DepthPoint], chosen: str, now: datetime
) -> dict[str, Any]:
    """The depth chart's data over the range (a slot per bucket, None where no process
    sampled), and its numbers in words: the latest sample (of the last hour's `minutes`,
    the freshest there is) and the peak of waiting runs."""
    resolution = RESOLUTIONS[chosen]
    last = resolution.bucket(now)
    slots = [last - resolution.step * i for i in reversed(range(resolution.keep - 1))]
    by_slot = {p.at: p for p in points}
    names = ("waiting", "delayed", "active", "dead")
    series = [
        {
            "label": "dead letters" if name == "dead" else name,
            "values": [getattr(by_slot[t], name) if t in by_slot else None for t in slots],
        }
        for name in names
    ]
    peak = max(points, key=lambda p: p.waiting, default=None)
    every = {"1h": "minute", "24h": "10 minutes", "7d": "hour"}[chosen]
    return {
        "chart": {
            "x": [int(t.timestamp()) for t in slots],
            "unit": "runs",
            "series": series,
        },
        "latest": minutes[-1] if minutes else (points[-1] if points else None),
        "latest_every": "minute" if minutes else every,
        "peak": peak,
        "samples": len(points),
        "every": every,
    }


def _edited(form: Mapping[str, str]) -> tuple[ScheduleTrigger, datetime | None]:
    """The trigger and end date the schedule editor's fields give: ``kind`` (cron or every),
    ``cron`` and ``timezone``, or ``every`` (seconds); ``end`` a local date and time in
    ``timezone`` (empty: no end). Raises `ValidationError` saying what is wrong."""
    zone = (form.get("timezone") or "UTC").strip()
    load_timezone(zone)
    trigger: ScheduleTrigger
    kind = form.get("kind") or "cron"
    if kind == "every":
        try:
            seconds = float(form.get("every") or "")
        except ValueError:
            raise InvalidScheduleError("interval", "give the interval in seconds") from None
        if not math.isfinite(seconds):
            raise InvalidScheduleError("interval", "give the interval in seconds")
        trigger = Every(timedelta(seconds=min(seconds, 86400 * 3651)))
    elif kind == "cron":
        trigger = Cron(form.get("cron") or "", zone)
    else:
        raise InvalidScheduleError("trigger", "choose cron or every")
    text = (form.get("end") or "").strip()
    if not text:
        return trigger, None
    try:
        end = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidScheduleError("end", f"{text!r} is not a date and time") from None
    if end.tzinfo is None:
        end = end.replace(tzinfo=load_timezone(zone))
    return trigger, end.astimezone(UTC)


def _editor_values(schedule: Schedule) -> dict[str, str]:
    """The schedule editor's fields filled in from a stored schedule."""
    trigger = schedule.trigger
    zone = schedule.timezone
    end = schedule.end
    return {
        "kind": "every" if isinstance(trigger, Every) else "cron",
        "cron": trigger.expression if isinstance(trigger, Cron) else "",
        "every": f"{trigger.interval.total_seconds():g}" if isinstance(trigger, Every) else "",
        "timezone": zone,
        "end": end.astimezone(load_timezone(zone)).strftime("%Y-%m-%dT%H:%M") if end else "",
    }


def _default_zone(hub: Hub, name: str) -> str:
    """The zone the schedule editor starts in: the job's first schedule's, else UTC."""
    schedules = hub.registry.get(name).definition.schedules
    return schedules[0].timezone if schedules else "UTC"


def _over_https(request: Request[Any, Any, Any]) -> bool:
    # The scheme the client used: a trusted proxy's X-Forwarded-Proto has been applied to
    # the scope already (see `create_app`'s trusted proxies).
    return request.url.scheme == "https"


class Pages(Controller):
    """The page, sign-in and sign-out."""

    @get("/")
    async def page(
        self,
        *,
        site: SiteDep,
        hub: HubDep,
        session: SessionDep,
        job: JobQuery = "",
        status: StatusQuery = "",
        range_: RangeQuery = "24h",
        jobs: PageCursor = None,
    ) -> Response[str] | Redirect:
        """The dashboard (the fragments load themselves), or the way to sign in; ``range``
        is the charts' (1h, 24h or 7d), ``jobs`` the page of the jobs table."""
        if session is None:
            return Redirect(site.url("/login"))
        return site.render(
            "page.html",
            user=session.user,
            csrf=session.csrf,
            here="overview",
            charts=True,
            job_names=[j.definition.name for j in hub.registry],
            states=[s.value for s in RunState],
            filters={k: v for k, v in {"job": job, "status": status}.items() if v},
            chart_range=range_ if range_ in CHART_RANGES else "24h",
            chart_ranges=CHART_RANGES,
            jobs_cursor=jobs,
        )

    @get("/audit")
    async def audit(
        self,
        *,
        site: SiteDep,
        admin: AdminDep,
        viewer: ViewerDep,
        by: ActorQuery = "",
        action: TextQuery = "",
        cursor: CursorQuery = "",
    ) -> Response[str]:
        """The audit trail (SystemAdmin only): who did what, to what, when and from where,
        filtered by actor and action, a page at a time; the filters and the cursor live in
        the URL."""
        _admin_only(viewer)
        return site.render(
            "audit.html",
            user=viewer.user,
            csrf=viewer.csrf,
            here="audit",
            **await _audit_context(admin, by, action, cursor),
        )

    @get("/runs")
    async def runs_page(
        self,
        *,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        job: JobQuery = "",
        run_state: StateQuery = "",
        trigger: StatusQuery = "",
        within: StatusQuery = "",
        q: TextQuery = "",
        cursor: CursorQuery = "",
    ) -> Response[str] | Redirect:
        """Every run, newest first, a page at a time, filtered by job, state and trigger,
        all in the URL; ``q`` finds a run by id (and opens its page)."""
        wanted = q.strip()
        if wanted:
            with contextlib.suppress(RunNotFoundError):
                return Redirect(site.url(f"/runs/{quote((await hub.history.get(wanted)).id)}"))
        context = await _runs_context(
            hub, job=job, state=run_state, trigger=trigger, within=within, cursor=cursor
        )
        return site.render(
            "runs_page.html",
            user=viewer.user,
            csrf=viewer.csrf,
            here="runs",
            job_names=[j.definition.name for j in hub.registry],
            states=[s.value for s in RunState],
            triggers=[t.value for t in RunTrigger],
            ranges=list(RANGES),
            not_found=wanted,
            can_act=viewer.can_act,
            **context,
            bulk=await _bulk_offers(hub, context["filters"]) if viewer.can_act else [],
        )

    @get("/runs/{run_id:str}")
    async def run_page(
        self, site: SiteDep, hub: HubDep, viewer: ViewerDep, run_id: Id
    ) -> Response[str]:
        """One run on its own page: every attempt with its error and traceback, the payload,
        the result and progress, and the origin of a dead-letter retry."""
        return site.render(
            "run_page.html",
            user=viewer.user,
            csrf=viewer.csrf,
            here="runs",
            standalone=True,
            can_act=viewer.can_act,
            **await _run_context(hub, run_id),
        )

    @get("/jobs/{name:str}")
    async def job_page(
        self,
        *,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        name: Name,
        cursor: CursorQuery = "",
    ) -> Response[str]:
        """One job: definition, schedules in words and cron with the next fires in their
        zone (DST notes), statistics windows, its runs a page at a time, and its actions."""
        return site.render(
            "job_page.html",
            user=viewer.user,
            csrf=viewer.csrf,
            here="jobs",
            charts=True,
            can_act=viewer.can_act,
            default_zone=_default_zone(hub, name),
            **await _job_context(hub, name, cursor),
        )

    @get("/login")
    async def login_page(self, site: SiteDep) -> Response[str]:
        """The sign-in form."""
        return site.render("login.html", csrf="", error=None)

    @post("/login", status_code=HTTP_200_OK)
    async def login(
        self,
        request: Request[Any, Any, Any],
        site: SiteDep,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[str] | Redirect:
        """Check the token and keep it in the session cookie (Secure over https)."""
        token = (data.get("token") or "").strip()
        user = site.principal(token)
        if user is None:
            return site.render(
                "login.html", csrf="", error="That token is not valid (or it expired)."
            )
        if not set(user.roles) & set(ROLES):
            return site.render(
                "login.html",
                csrf="",
                error=f"That token has none of the roles {' or '.join(ROLES)}.",
            )
        redirect = Redirect(site.url("/"))
        redirect.cookies.append(
            Cookie(
                key=COOKIE,
                value=token,
                path=site.path,
                httponly=True,
                secure=_over_https(request),
                samesite="strict",
                max_age=int(SESSION_LENGTH.total_seconds()),
            )
        )
        return redirect

    @post("/logout", status_code=HTTP_200_OK)
    async def logout(self, request: Request[Any, Any, Any], site: SiteDep) -> Redirect:
        """Forget the session cookie."""
        redirect = Redirect(site.url("/login"))
        redirect.cookies.append(
            Cookie(
                key=COOKIE, value="", path=site.path, max_age=0, httponly=True,
                secure=_over_https(request), samesite="strict",
            )
        )  # fmt: skip
        return redirect


class Fragments(Controller):
    """The parts of the page htmx refreshes; any signed-in role may read them."""

    path = "/fragments"

    @get("/summary")
    async def summary(
        self,
        site: SiteDep,
        hub: HubDep,
        admin: AdminDep,
        viewer: ViewerDep,
    ) -> Response[str]:
        """The cards: queue counts, 24 h success rate, workers, schedulers, queue state; and
        the alerts firing now and the last few resolved. The snapshot read is offered to the
        depth history too (a sample when its minute has none)."""
        health = await admin.queue_health()
        await hub.depth.record(health.snapshot, admin.clock.now())
        book = await admin.alerts()
        day = [s.windows["24h"] for s in await admin.all_job_stats(windows=("24h",))]
        finished = sum(w.finished for w in day)
        rate = f"{100 * sum(w.succeeded for w in day) / finished:.0f}%" if finished else "-"
        return site.render(
            "summary.html",
            q=health_json(health),
            firing=[a for a in book.active.values() if a.fired_at is not None],
            resolved=book.recent[:RECENT_ALERTS],
            muted={key: book.muted_until(key, admin.clock.now()) for key in book.active},
            success_rate=rate,
            can_act=viewer.can_act,
            refreshed=admin.clock.now().strftime("%H:%M:%S"),
            refreshed_at=admin.clock.now(),
        )

    @get("/audit")
    async def audit(
        self,
        *,
        site: SiteDep,
        admin: AdminDep,
        viewer: ViewerDep,
        by: ActorQuery = "",
        action: TextQuery = "",
        cursor: CursorQuery = "",
    ) -> Response[str]:
        """The audit table (SystemAdmin only), as the audit page shows it."""
        _admin_only(viewer)
        context = await _audit_context(admin, by, action, cursor)
        return site.render("audit_table.html", **context)

    @get("/jobs/{name:str}")
    async def job(
        self,
        *,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        name: Name,
        cursor: CursorQuery = "",
    ) -> Response[str]:
        """The job page's content, as the page shows it."""
        context = await _job_context(hub, name, cursor)
        return site.render("job.html", can_act=viewer.can_act, **context)

    @get("/jobs/{name:str}/preview")
    async def preview(
        self,
        *,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        name: Name,
        kind: StatusQuery = "cron",
        cron: TextQuery = "",
        every: TextQuery = "",
        timezone: TextQuery = "UTC",
        end: TextQuery = "",
        editing: TextQuery = "",
    ) -> Response[str]:
        """The next 5 fires of what the schedule editor says (a cron expression in a zone,
        or an interval; an end date), with DST notes, or what is wrong with it; nothing is
        stored. ``editing`` names the runtime schedule being edited: its start, run limit
        and runs so far count too."""
        del viewer
        hub.registry.get(name)
        which = "edit-" if editing else ""
        form = {"kind": kind, "cron": cron, "every": every, "timezone": timezone, "end": end}
        try:
            trigger, until = _edited(form)
            runs = 0
            schedule = Schedule(trigger, job=name, id="preview", end=until)
            if editing:
                state = await hub.schedules.get(editing)
                schedule = attrs.evolve(state.schedule, trigger=trigger, end=until)
                runs = state.runs
            fires = schedule.preview(hub.clock.now(), NEXT_FIRES, runs)
        except ValidationError as exc:
            return site.render("preview.html", error=str(exc), which=which)
        return site.render(
            "preview.html",
            fires=fires,
            zone=schedule.timezone,
            description=schedule.describe(),
            error=None,
            which=which,
        )

    @get("/schedules/{schedule_id:str}/editor")
    async def schedule_editor(
        self, site: SiteDep, hub: HubDep, viewer: ViewerDep, schedule_id: Id
    ) -> Response[str]:
        """The editor of a runtime schedule (SystemAdmin only), filled in from the stored
        definition, its preview loading itself; a schedule declared in code says code owns
        it."""
        _admin_only(viewer)
        state = await hub.schedules.get(schedule_id)
        return site.render(
            "schedule_editor.html",
            schedule=schedule_json(state),
            values=_editor_values(state.schedule),
            job=state.schedule.job,
        )

    @get("/throughput")
    async def throughput(
        self, site: SiteDep, hub: HubDep, viewer: ViewerDep, range_: RangeQuery = "24h"
    ) -> Response[str]:
        """The overview's charts over the last hour, day or week (``range``): attempts by
        outcome (per minute from the depth samples over 1 h, per hour from the statistics
        over 24 h and 7 d) and queue depth, each with its numbers in words; and per job its
        24 h trend with the flags (failing more than 10 %, p95 past twice its 7-day one)."""
        del viewer
        chosen = range_ if range_ in CHART_RANGES else "24h"
        now = hub.clock.now()
        depth = await hub.depth.series(chosen, now)
        this_hour = now.replace(minute=0, second=0, microsecond=0)
        hour_count = 24 * 7 if chosen == "7d" else 24
        hours = [this_hour - timedelta(hours=h) for h in reversed(range(hour_count))]
        counts = {h: [0, 0, 0] for h in hours}
        failing = []
        trends = []
        for stats in await hub.admin.all_job_stats(trend_hours=hour_count):
            name = stats.job
            runs = [0] * 24
            bad = [0] * 24
            for bucket in stats.hourly:
                if bucket.hour in counts:
                    row = counts[bucket.hour]
                    row[0] += bucket.succeeded
                    row[1] += bucket.failed
                    row[2] += bucket.dead
                    at = hours.index(bucket.hour) - (hour_count - 24)
                    if at >= 0:
                        runs[at] = bucket.succeeded + bucket.failed + bucket.dead
                        bad[at] = bucket.failed + bucket.dead
            day, week = stats.windows["24h"], stats.windows["7d"]
            if day.finished and (day.failed + day.dead) / day.finished > FAILING:
                failing.append(name)
            trends.append(_trend(name, runs, bad, day, week))
        if chosen == "1h":
            attempts = _per_minute(depth, now)
        else:
            attempts = {
                "x": [int(h.timestamp()) for h in hours],
                "unit": "attempts per hour",
                "series": [
                    {"label": "succeeded", "values": [counts[h][0] for h in hours]},
                    {"label": "failed", "values": [counts[h][1] for h in hours]},
                    {"label": "dead", "values": [counts[h][2] for h in hours]},
                ],
            }
        totals = {
            item["label"]: sum(v for v in item["values"] if v is not None)
            for item in attempts["series"]
        }
        return site.render(
            "throughput.html",
            range=chosen,
            ranges=CHART_RANGES,
            series=attempts,
            totals=totals,
            depth=_depth_chart(
                depth, depth if chosen == "1h" else await hub.depth.series("1h", now), chosen, now
            ),
            failing=failing,
            trends=trends,
        )

    @get("/jobs")
    async def jobs(
        self,
        request: Request[Any, Any, Any],
        site: SiteDep,
        admin: AdminDep,
        viewer: ViewerDep,
        cursor: PageCursor = None,
    ) -> Response[str]:
        """The jobs table, `JOBS_PAGE` jobs by name at a time (``cursor`` names the page, as
        the page's ``jobs`` query does): schedules in words, next run in local time and UTC,
        last run; with links to the next and previous pages."""
        page = await admin.job_summaries_page(cursor, JOBS_PAGE)
        has_previous, previous = admin.previous_jobs_page(cursor, JOBS_PAGE)
        # The links reload the whole page with the cursor in its URL (so a refresh of the
        # table stays on its page), keeping the page's other query (filters, chart range).
        here = {k: v for k, v in request.query_params.items() if k != "cursor"}

        def page_url(at: str | None) -> str:
            query = urlencode({**here, "jobs": at} if at else here)
            return site.url("/") + (f"?{query}" if query else "")

        links = {
            "next": page_url(page.next_cursor) if page.next_cursor else None,
            "previous": page_url(previous) if has_previous else None,
        }
        rows = []
        for summary in page.items:
            row = JobSummaryView.from_domain(summary).model_dump(mode="json")
            for item, state in zip(row["schedules"], summary.schedules, strict=True):
                fire = state.next_fire
                zone = load_timezone(state.schedule.timezone)
                # A schedule with no next fire is over (its end, run limit or single
                # instant passed).
                item["next_local"] = (
                    fire.astimezone(zone).strftime("%a %d %b %H:%M %Z") if fire else "ended"
                )
            rows.append(row)
        return site.render("jobs.html", jobs=rows, can_act=viewer.can_act, links=links)

    @get("/runs")
    async def runs(
        self,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        job: JobQuery = "",
        status: StatusQuery = "",
    ) -> Response[str]:
        """Recent runs, filtered by job and state (unknown filter values are ignored)."""
        del viewer
        states = frozenset({RunState(status)}) if status in set(RunState) else None
        name = job if job in hub.registry else None
        page = await hub.history.list(job=name, states=states, limit=RECENT_RUNS)
        return site.render("runs.html", runs=[run_json(r) for r in page.items])

    @get("/runs/{run_id:str}")
    async def run_detail(
        self,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        run_id: Id,
        standalone: StatusQuery = "",
    ) -> Response[str]:
        """One run with its error, payload, result and progress (refreshing itself while the
        run is not finished; Cancel for admins while it waits); ``standalone`` for the run's
        own page."""
        context = await _run_context(hub, run_id)
        return site.render(
            "run.html", standalone=bool(standalone), can_act=viewer.can_act, **context
        )

    @get("/run-list")
    async def run_list(
        self,
        *,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        job: JobQuery = "",
        run_state: StateQuery = "",
        trigger: StatusQuery = "",
        within: StatusQuery = "",
        cursor: CursorQuery = "",
    ) -> Response[str]:
        """The runs page's list, as the page shows it."""
        context = await _runs_context(
            hub, job=job, state=run_state, trigger=trigger, within=within, cursor=cursor
        )
        return site.render("runs_list.html", can_act=viewer.can_act, **context)

    @get("/dlq")
    async def dead(
        self,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
    ) -> Response[str]:
        """The dead letters."""
        page = await hub.dead_letters.list(limit=DEAD_SHOWN)
        runs = [run_json(r) for r in page.items]
        return site.render("dlq.html", runs=runs, can_act=viewer.can_act)

    @get("/schedules/{schedule_id:str}/slots")
    async def slots(
        self,
        site: SiteDep,
        hub: HubDep,
        viewer: ViewerDep,
        schedule_id: Id,
    ) -> Response[str]:
        """A schedule's slot ledger, its origin, and pause / resume / delete for admins
        (delete disabled, with the reason, for a schedule declared in code)."""
        state = schedule_json(await hub.schedules.get(schedule_id))
        page = await hub.schedules.slots(schedule_id, None, SLOTS_SHOWN)
        return site.render(
            "slots.html",
            schedule=state,
            slots=[slot_json(s) for s in page.items],
            can_act=viewer.can_act,
        )


class Actions(Controller):
    """What an admin can do from the page: the API's use cases, audited alike."""

    path = "/actions"

    @post(
        "/jobs/{name:str}/trigger",
        opt=audited(Action.JOB_TRIGGER, "{name}"),
        status_code=HTTP_200_OK,
    )
    async def trigger(
        self,
        request: Request[Any, Any, Any],
        site: SiteDep,
        admin: AdminDep,
        actor: ActorDep,
        name: Name,
    ) -> Response[str]:
        """Run a job now, with the JSON object of the form's ``payload`` field when there is
        one (the job page's; a 400 says what is wrong with it)."""
        form = await request.form()
        text = str(form.get("payload") or "").strip()
        payload = None
        if text:
            try:
                payload = json.loads(text)
            except ValueError as exc:
                raise ValidationException(f"the payload is not JSON: {exc}") from None
            if not isinstance(payload, dict):
                raise ValidationException("the payload is a JSON object: {...}")
        run_id = await admin.trigger(actor, name, payload)
        if not text:
            return _refresh()
        return Response(
            f"<p id='trigger-result'>Enqueued run <a href='{escape(site.url('/runs/' + run_id))}'>"
            f"{escape(run_id)}"
            "</a> with that payload.</p>",
            media_type=MediaType.HTML,
            headers=REFRESH,
        )

    @post(
        "/jobs/{name:str}/schedules",
        opt=audited(Action.SCHEDULE_CREATE, "{name}"),
        status_code=HTTP_200_OK,
    )
    async def create_schedule(
        self,
        admin: AdminDep,
        actor: ActorDep,
        name: Name,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[str]:
        """Add a runtime schedule (cron or interval, an optional end) to a job (the API's
        schedule.create, audited alike); the answer says what was saved, or what is wrong
        (a 400 for a bad id, expression, interval, zone or end, a 409 for an id taken)."""
        schedule_id = (data.get("id") or "").strip()
        if not SCHEDULE_ID.fullmatch(schedule_id):
            raise ValidationException("the id is 1-100 letters, digits or _ . : -")
        trigger, end = _edited(data)
        schedule = Schedule(trigger, job=name, id=schedule_id, end=end)
        state = await admin.create_schedule(actor, schedule)
        saved = f"Saved {state.schedule.id}: {state.schedule.describe()}."
        return Response(
            f"<p id='schedule-saved'>{escape(saved)}</p>",
            media_type=MediaType.HTML,
            headers=REFRESH,
        )

    @post(
        "/jobs/{name:str}/pause", opt=audited(Action.JOB_PAUSE, "{name}"), status_code=HTTP_200_OK
    )
    async def pause_job(self, admin: AdminDep, actor: ActorDep, name: Name) -> Response[str]:
        """Pause a job."""
        await admin.set_job_paused(actor, name, paused=True)
        return _refresh()

    @post(
        "/jobs/{name:str}/resume", opt=audited(Action.JOB_RESUME, "{name}"), status_code=HTTP_200_OK
    )
    async def resume_job(self, admin: AdminDep, actor: ActorDep, name: Name) -> Response[str]:
        """Resume a job."""
        await admin.set_job_paused(actor, name, paused=False)
        return _refresh()

    @post("/queue/pause", opt=audited(Action.QUEUE_PAUSE, "queue"), status_code=HTTP_200_OK)
    async def pause_queue(self, admin: AdminDep, actor: ActorDep) -> Response[str]:
        """Pause the queue."""
        await admin.set_queue_paused(actor, paused=True)
        return _refresh()

    @post("/queue/resume", opt=audited(Action.QUEUE_RESUME, "queue"), status_code=HTTP_200_OK)
    async def resume_queue(self, admin: AdminDep, actor: ActorDep) -> Response[str]:
        """Resume the queue."""
        await admin.set_queue_paused(actor, paused=False)
        return _refresh()

    @post(
        "/alerts/{key:str}/mute", opt=audited(Action.ALERT_MUTE, "{key}"), status_code=HTTP_200_OK
    )
    async def mute_alert(self, admin: AdminDep, actor: ActorDep, key: Id) -> Response[str]:
        """Mute one alert for an hour (recorded, no notices; audited)."""
        await admin.mute_alert(actor, key, MUTE_FOR)
        return _refresh()

    @post("/dlq/retry-all", opt=audited(Action.DLQ_RETRY_ALL, "dlq"), status_code=HTTP_200_OK)
    async def retry_all(self, admin: AdminDep, actor: ActorDep) -> Response[str]:
        """Retry every dead letter."""
        await admin.retry_all_dead(actor)
        return _refresh()

    @post("/dlq/purge", opt=audited(Action.DLQ_PURGE, "dlq"), status_code=HTTP_200_OK)
    async def purge(self, admin: AdminDep, actor: ActorDep) -> Response[str]:
        """Forget every dead letter."""
        await admin.purge_dead(actor)
        return _refresh()

    @post(
        "/runs/{run_id:str}/cancel",
        opt=audited(Action.RUN_CANCEL, "{run_id}"),
        status_code=HTTP_200_OK,
    )
    async def cancel(self, admin: AdminDep, actor: ActorDep, run_id: Id) -> Response[str]:
        """Cancel a run: a waiting one at once, a running one asked to stop."""
        await admin.cancel(actor, run_id)
        return _refresh()

    @post("/runs/bulk/cancel", opt=audited(Action.RUNS_CANCEL, "runs"), status_code=HTTP_200_OK)
    async def bulk_cancel(
        self,
        *,
        request: Request[Any, Any, Any],
        hub: HubDep,
        actor: ActorDep,
        job: JobQuery = "",
        run_state: StateQuery = "",
        trigger: StatusQuery = "",
        within: StatusQuery = "",
    ) -> Response[str]:
        """Cancel every run the runs page's filter matches (its query string), or the runs
        ticked on it (``run_id`` fields)."""
        filters = _filters(hub, job=job, state=run_state, trigger=trigger, within=within)
        return await _bulk(request, hub, actor, BulkAction.CANCEL, filters)

    @post("/runs/bulk/retry", opt=audited(Action.RUNS_RETRY, "runs"), status_code=HTTP_200_OK)
    async def bulk_retry(
        self,
        *,
        request: Request[Any, Any, Any],
        hub: HubDep,
        actor: ActorDep,
        job: JobQuery = "",
        run_state: StateQuery = "",
        trigger: StatusQuery = "",
        within: StatusQuery = "",
    ) -> Response[str]:
        """Retry every dead letter the runs page's filter matches, or the runs ticked on it
        (``run_id`` fields)."""
        filters = _filters(hub, job=job, state=run_state, trigger=trigger, within=within)
        return await _bulk(request, hub, actor, BulkAction.RETRY, filters)

    @post("/runs/bulk/delete", opt=audited(Action.RUNS_DELETE, "runs"), status_code=HTTP_200_OK)
    async def bulk_delete(
        self,
        *,
        request: Request[Any, Any, Any],
        hub: HubDep,
        actor: ActorDep,
        job: JobQuery = "",
        run_state: StateQuery = "",
        trigger: StatusQuery = "",
        within: StatusQuery = "",
    ) -> Response[str]:
        """Delete every dead letter the runs page's filter matches, or the runs ticked on it
        (``run_id`` fields)."""
        filters = _filters(hub, job=job, state=run_state, trigger=trigger, within=within)
        return await _bulk(request, hub, actor, BulkAction.DELETE, filters)

    @post(
        "/dlq/{run_id:str}/retry",
        opt=audited(Action.DLQ_RETRY, "{run_id}"),
        status_code=HTTP_200_OK,
    )
    async def retry(self, admin: AdminDep, actor: ActorDep, run_id: Id) -> Response[str]:
        """Retry one dead letter."""
        await admin.retry_dead(actor, run_id)
        return _refresh()

    @post(
        "/schedules/{schedule_id:str}/edit",
        opt=audited(Action.SCHEDULE_UPDATE, "{schedule_id}"),
        status_code=HTTP_200_OK,
    )
    async def edit_schedule(
        self,
        admin: AdminDep,
        actor: ActorDep,
        schedule_id: Id,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[str]:
        """Change a runtime schedule's trigger (cron and zone, or interval) and end date,
        keeping its start, run limit, misfire policy, payload and runtime state (the API's
        schedule.update, audited alike); a 400 says what is wrong, a 409 refuses a schedule
        declared in code."""

        def change(schedule: Schedule) -> Schedule:
            trigger, end = _edited(data)
            return attrs.evolve(schedule, trigger=trigger, end=end)

        state = await admin.edit_schedule(actor, schedule_id, change)
        saved = f"Saved {state.schedule.id}: {state.schedule.describe()}."
        return Response(
            f"<p id='schedule-edit-saved'>{escape(saved)}</p>",
            media_type=MediaType.HTML,
            headers=REFRESH,
        )

    @post(
        "/schedules/{schedule_id:str}/pause",
        opt=audited(Action.SCHEDULE_PAUSE, "{schedule_id}"),
        status_code=HTTP_200_OK,
    )
    async def pause_schedule(
        self, admin: AdminDep, actor: ActorDep, schedule_id: Id
    ) -> Response[str]:
        """Pause a schedule (declared or runtime)."""
        await admin.set_schedule_paused(actor, schedule_id, paused=True)
        return _refresh()

    @post(
        "/schedules/{schedule_id:str}/resume",
        opt=audited(Action.SCHEDULE_RESUME, "{schedule_id}"),
        status_code=HTTP_200_OK,
    )
    async def resume_schedule(
        self, admin: AdminDep, actor: ActorDep, schedule_id: Id
    ) -> Response[str]:
        """Resume a schedule."""
        await admin.set_schedule_paused(actor, schedule_id, paused=False)
        return _refresh()

    @post(
        "/schedules/{schedule_id:str}/delete",
        opt=audited(Action.SCHEDULE_DELETE, "{schedule_id}"),
        status_code=HTTP_200_OK,
    )
    async def delete_schedule(
        self, admin: AdminDep, actor: ActorDep, schedule_id: Id
    ) -> Response[str]:
        """Delete a runtime schedule (a declared one is refused: code owns it)."""
        await admin.delete_schedule(actor, schedule_id)
        return _refresh()

    @post(
        "/dlq/{run_id:str}/delete",
        opt=audited(Action.DLQ_DELETE, "{run_id}"),
        status_code=HTTP_200_OK,
    )
    async def delete(self, admin: AdminDep, actor: ActorDep, run_id: Id) -> Response[str]:
        """Forget one dead letter."""
        await admin.delete_dead(actor, run_id)
        return _refresh()
