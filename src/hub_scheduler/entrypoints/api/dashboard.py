"""The admin dashboard: server-rendered HTML fragments refreshed by a vendored htmx.

No build step and no CDN: templates live in ``templates/``, htmx in ``static/``. Sign-in
takes an API token and keeps it in an HttpOnly, SameSite=Strict cookie scoped to the
dashboard. Every action is a POST carrying an ``X-Hub-CSRF`` header whose value is an HMAC of
the session (htmx adds it from the page); a cross-site form can neither read nor send it.
A `JobViewer` sees no action buttons, and the actions refuse anyone without SystemAdmin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any

import jinja2
from litestar import MediaType, Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from markupsafe import escape

from hub_scheduler.domain.errors import HubSchedulerError, NotFoundError
from hub_scheduler.domain.model import RunState
from hub_scheduler.domain.ports import AuditLog
from hub_scheduler.entrypoints.api.routes import Auditor
from hub_scheduler.entrypoints.api.schemas import run_json, schedule_json, slot_json, snapshot_json
from hub_scheduler.entrypoints.api.security import ADMIN, ROLES, Principal
from hub_scheduler.hub import Hub

COOKIE = "hub_session"
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(resources.files(__package__) / "templates")),
    autoescape=True,
)
Name = Annotated[str, PathParameter(max_length=100)]
Id = Annotated[str, PathParameter(max_length=100)]
PauseVerb = Annotated[str, PathParameter(pattern="^(pause|resume)$")]
DeadVerb = Annotated[str, PathParameter(pattern="^(retry|delete)$")]


def dashboard_router(  # noqa: PLR0915 - one closure per page, fragment and action
    hub: Hub, audit: AuditLog, secret: str, *, path: str = "/admin"
) -> Router:
    """The dashboard for `hub` at `path`, signing sessions with the API's JWT `secret`."""
    record = Auditor(audit, hub)

    def csrf_for(token: str) -> str:
        return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()

    def principal(request: Request[Any, Any, Any]) -> tuple[Principal, str] | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        from litestar.security.jwt import Token  # noqa: PLC0415

        try:
            decoded = Token.decode(token, secret, "HS256")
        except NotAuthorizedException:
            return None
        roles = decoded.extras.get("roles", [])
        roles = tuple(str(r) for r in roles) if isinstance(roles, list) else ()
        if not set(roles) & set(ROLES):
            return None
        return Principal(decoded.sub, roles), token

    def render(name: str, **context: Any) -> Response[str]:
        html = _templates.get_template(name).render(prefix=path, **context)
        return Response(html, media_type=MediaType.HTML)

    def viewer(request: Request[Any, Any, Any]) -> Principal:
        found = principal(request)
        if found is None:
            raise NotAuthorizedException("sign in at the dashboard first")
        return found[0]

    def actor(request: Request[Any, Any, Any]) -> Principal:
        found = principal(request)
        if found is None:
            raise NotAuthorizedException("sign in at the dashboard first")
        user, token = found
        if not hmac.compare_digest(request.headers.get("x-hub-csrf", ""), csrf_for(token)):
            raise PermissionDeniedException("missing or wrong CSRF header")
        if ADMIN not in user.roles:
            raise PermissionDeniedException(f"the {ADMIN} role is required")
        request.scope["user"] = user
        return user

    async def refresh(request: Request[Any, Any, Any], action: str, target: str) -> Response[str]:
        await record(request, f"dashboard.{action}", target)
        return Response("", headers={"HX-Trigger": "refresh"})

    # --- pages -------------------------------------------------------------------------

    @get("/", include_in_schema=False)
    async def page(
        request: Request[Any, Any, Any],
        job: Annotated[str, QueryParameter(max_length=100)] = "",
        status: Annotated[str, QueryParameter(max_length=20)] = "",
    ) -> Response[str] | Redirect:
        found = principal(request)
        if found is None:
            return Redirect(f"{path}/login")
        user, token = found
        return render(
            "page.html",
            user=user,
            csrf=csrf_for(token),
            job_names=[j.definition.name for j in hub.registry],
            states=[s.value for s in RunState],
            filters={"job": job, "status": status},
        )

    @get("/login", include_in_schema=False)
    async def login_page() -> Response[str]:
        return render("login.html", csrf="", error=None)

    @post("/login", include_in_schema=False, status_code=200)
    async def login(
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[str] | Redirect:
        token = (data.get("token") or "").strip()
        from litestar.security.jwt import Token  # noqa: PLC0415

        try:
            Token.decode(token, secret, "HS256")
        except NotAuthorizedException:
            return render("login.html", csrf="", error="That token is not valid (or it expired).")
        redirect = Redirect(path + "/")
        redirect.cookies.append(
            Cookie(key=COOKIE, value=token, path=path, httponly=True, samesite="strict",
                   max_age=int(timedelta(hours=12).total_seconds()))
        )  # fmt: skip
        return redirect

    @post("/logout", include_in_schema=False, status_code=200)
    async def logout() -> Redirect:
        redirect = Redirect(f"{path}/login")
        redirect.cookies.append(Cookie(key=COOKIE, value="", path=path, max_age=0))
        return redirect

    # --- fragments -------------------------------------------------------------------------

    @get("/fragments/summary", include_in_schema=False)
    async def summary(request: Request[Any, Any, Any]) -> Response[str]:
        user = viewer(request)
        now = hub.clock.now()
        snapshot = snapshot_json(await hub.queue.snapshot(), await hub.presence.workers(now))
        day = [
            (await hub.stats.job(j.definition.name, now, windows=("24h",))).windows["24h"]
            for j in hub.registry
        ]
        finished = sum(w.finished for w in day)
        rate = f"{100 * sum(w.succeeded for w in day) / finished:.0f}%" if finished else "-"
        schedulers = len(await hub.presence.schedulers(now))
        return render(
            "summary.html", q=snapshot, success_rate=rate, schedulers=schedulers,
            can_act=ADMIN in user.roles, refreshed=now.strftime("%H:%M:%S"),
        )  # fmt: skip

    @get("/fragments/jobs", include_in_schema=False)
    async def jobs(request: Request[Any, Any, Any]) -> Response[str]:
        user = viewer(request)
        paused = (await hub.queue.snapshot()).paused_jobs
        all_schedules = await hub.schedules.list()  # once for the table, not once per job
        rows = []
        for job in hub.registry:
            name = job.definition.name
            schedules = []
            for state in (s for s in all_schedules if s.schedule.job == name):
                item = schedule_json(state)
                tz = state.schedule.trigger
                local = (
                    state.next_fire.astimezone(getattr(tz, "tz", None)) if state.next_fire else None
                )
                item["next_local"] = local.strftime("%a %d %b %H:%M %Z") if local else "never"
                schedules.append(item)
            recent = (await hub.history.list(job=name, limit=1)).items
            rows.append({
                "name": name, "description": job.definition.description, "schedules": schedules,
                "paused": name in paused, "last_run": run_json(recent[0]) if recent else None,
            })  # fmt: skip
        return render("jobs.html", jobs=rows, can_act=ADMIN in user.roles)

    @get("/fragments/runs", include_in_schema=False)
    async def runs(
        request: Request[Any, Any, Any],
        job: Annotated[str, QueryParameter(max_length=100)] = "",
        status: Annotated[str, QueryParameter(max_length=20)] = "",
    ) -> Response[str]:
        viewer(request)
        states = frozenset({RunState(status)}) if status in {s.value for s in RunState} else None
        name = job if job in hub.registry else None
        page = await hub.history.list(job=name, states=states, limit=25)
        return render("runs.html", runs=[run_json(r) for r in page.items])

    @get("/fragments/runs/{run_id:str}", include_in_schema=False)
    async def run_detail(request: Request[Any, Any, Any], run_id: Id) -> Response[str]:
        viewer(request)
        data = run_json(await hub.history.get(run_id))
        return render("run.html", r=data, payload=json.dumps(data["payload"], indent=2))

    @get("/fragments/dlq", include_in_schema=False)
    async def dead(request: Request[Any, Any, Any]) -> Response[str]:
        user = viewer(request)
        page = await hub.dead_letters.list(limit=50)
        return render(
            "dlq.html", runs=[run_json(r) for r in page.items], can_act=ADMIN in user.roles
        )

    @get("/fragments/schedules/{schedule_id:str}/slots", include_in_schema=False)
    async def slots(request: Request[Any, Any, Any], schedule_id: Id) -> Response[str]:
        viewer(request)
        state = schedule_json(await hub.schedules.get(schedule_id))
        page = await hub.schedules.slots(schedule_id, None, 50)
        return render("slots.html", schedule=state, slots=[slot_json(s) for s in page.items])

    # --- actions --------------------------------------------------------------------------

    @post("/actions/jobs/{name:str}/trigger", include_in_schema=False, status_code=200)
    async def trigger(request: Request[Any, Any, Any], name: Name) -> Response[str]:
        actor(request)
        run_id = await hub.enqueue(hub.registry.get(name).definition.name)
        return await refresh(request, "job.trigger", f"{name}:{run_id}")

    @post("/actions/jobs/{name:str}/{verb:str}", include_in_schema=False, status_code=200)
    async def pause_job(
        request: Request[Any, Any, Any],
        name: Name,
        verb: PauseVerb,
    ) -> Response[str]:
        actor(request)
        hub.registry.get(name)
        await (hub.queue.pause(name) if verb == "pause" else hub.queue.resume(name))
        return await refresh(request, f"job.{verb}", name)

    @post("/actions/queue/{verb:str}", include_in_schema=False, status_code=200)
    async def pause_queue(
        request: Request[Any, Any, Any],
        verb: PauseVerb,
    ) -> Response[str]:
        actor(request)
        await (hub.queue.pause() if verb == "pause" else hub.queue.resume())
        return await refresh(request, f"queue.{verb}", "queue")

    @post("/actions/dlq/retry-all", include_in_schema=False, status_code=200)
    async def retry_all(request: Request[Any, Any, Any]) -> Response[str]:
        actor(request)
        await hub.dead_letters.retry_all()
        return await refresh(request, "dlq.retry_all", "dlq")

    @post("/actions/dlq/purge", include_in_schema=False, status_code=200)
    async def purge(request: Request[Any, Any, Any]) -> Response[str]:
        actor(request)
        await hub.dead_letters.purge()
        return await refresh(request, "dlq.purge", "dlq")

    @post("/actions/dlq/{run_id:str}/{verb:str}", include_in_schema=False, status_code=200)
    async def dead_action(
        request: Request[Any, Any, Any],
        run_id: Id,
        verb: DeadVerb,
    ) -> Response[str]:
        actor(request)
        await (
            hub.dead_letters.retry(run_id) if verb == "retry" else hub.dead_letters.delete(run_id)
        )
        return await refresh(request, f"dlq.{verb}", run_id)

    def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
        status = getattr(exc, "status_code", 500)
        if isinstance(exc, HubSchedulerError):
            status = 404 if isinstance(exc, NotFoundError) else 400
        if status == 401 and request.method == "GET" and "hx-request" not in request.headers:
            return Redirect(f"{path}/login")
        text = str(getattr(exc, "detail", None) or exc) if status < 500 else "unexpected error"
        return Response(
            f"<p role='alert'>{escape(text)}</p>", status_code=status, media_type=MediaType.HTML
        )

    static = create_static_files_router(
        path="/static", directories=[str(resources.files(__package__) / "static")],
        include_in_schema=False,
    )  # fmt: skip
    return Router(
        path=path,
        route_handlers=[
            page,
            login_page,
            login,
            logout,
            summary,
            jobs,
            runs,
            run_detail,
            dead,
            slots,
            trigger,
            pause_job,
            pause_queue,
            retry_all,
            purge,
            dead_action,
            static,
        ],
        # Named one by one: the most specific class wins across layers, and the standalone
        # app maps these to problem+json, which a fragment must not become.
        exception_handlers={
            HTTPException: on_error,
            HubSchedulerError: on_error,
            Exception: on_error,
        },
        include_in_schema=False,
    )
