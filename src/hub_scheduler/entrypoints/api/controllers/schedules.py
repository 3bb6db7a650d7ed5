"""Schedules: list, create, edit, pause, resume, delete, preview and the slot ledger."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from hub_scheduler.domain.admin import PAGE_DEFAULT, Action
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep, HubDep
from hub_scheduler.entrypoints.api.paging import PAGE_HEADERS, PageCursor, PageLimit, paged
from hub_scheduler.entrypoints.api.params import Cursor, Id, Limit
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import (
    DeletedView,
    FirePreviewView,
    ScheduleBody,
    SchedulePatch,
    ScheduleView,
    SlotPage,
    patched_schedule,
    schedule_from_body,
)
from hub_scheduler.entrypoints.api.security import can_act, can_read


class SchedulesController(Controller):
    """``/schedules``."""

    path = "/schedules"
    tags = ("schedules",)
    guards = (can_read,)

    @get("/", responses=documented(), response_headers=PAGE_HEADERS)
    async def list_schedules(
        self,
        admin: AdminDep,
        request: Request[Any, Any, Any],
        limit: PageLimit = PAGE_DEFAULT,
        cursor: PageCursor = None,
    ) -> Response[list[ScheduleView]]:
        """Schedules by id, a page at a time (follow `X-Next-Cursor` or the `Link` header),
        with their next and last fire."""
        page = await admin.schedules_page(cursor, limit)
        return paged(request, [ScheduleView.from_domain(s) for s in page.items], page.next_cursor)

    @post(
        "/",
        guards=[can_act],
        opt=audited(Action.SCHEDULE_CREATE),
        status_code=HTTP_201_CREATED,
        responses=documented(404, 409),
    )
    async def create(
        self,
        admin: AdminDep,
        actor: ActorDep,
        data: JSONBody[ScheduleBody],
    ) -> ScheduleView:
        """Create a schedule at runtime (for example a custom cron from the dashboard); 409
        when the id is taken or declared in code."""
        state = await admin.create_schedule(actor, schedule_from_body(data))
        return ScheduleView.from_domain(state)

    @patch(
        "/{schedule_id:str}",
        guards=[can_act],
        opt=audited(Action.SCHEDULE_UPDATE, "{schedule_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404, 409),
    )
    async def edit(
        self,
        admin: AdminDep,
        actor: ActorDep,
        schedule_id: Id,
        data: JSONBody[SchedulePatch],
    ) -> ScheduleView:
        """Change some fields of a runtime schedule; its runtime state is kept. A schedule
        declared in code (``origin: "code"``) answers 409: code owns it (pause it instead)."""
        change = partial(patched_schedule, patch=data)
        return ScheduleView.from_domain(await admin.edit_schedule(actor, schedule_id, change))

    @delete(
        "/{schedule_id:str}",
        guards=[can_act],
        opt=audited(Action.SCHEDULE_DELETE, "{schedule_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404, 409),
    )
    async def delete_one(self, admin: AdminDep, actor: ActorDep, schedule_id: Id) -> DeletedView:
        """Delete a runtime schedule (its ledger stays for the retention); 409 for one
        declared in code (remove it from the code)."""
        await admin.delete_schedule(actor, schedule_id)
        return DeletedView(deleted=schedule_id)

    @post(
        "/{schedule_id:str}/pause",
        guards=[can_act],
        opt=audited(Action.SCHEDULE_PAUSE, "{schedule_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def pause(self, admin: AdminDep, actor: ActorDep, schedule_id: Id) -> ScheduleView:
        """Pause a schedule: its slots are ledgered as paused."""
        state = await admin.set_schedule_paused(actor, schedule_id, paused=True)
        return ScheduleView.from_domain(state)

    @post(
        "/{schedule_id:str}/resume",
        guards=[can_act],
        opt=audited(Action.SCHEDULE_RESUME, "{schedule_id}"),
        status_code=HTTP_200_OK,
        responses=documented(404),
    )
    async def resume(self, admin: AdminDep, actor: ActorDep, schedule_id: Id) -> ScheduleView:
        """Resume a schedule from its next slot."""
        state = await admin.set_schedule_paused(actor, schedule_id, paused=False)
        return ScheduleView.from_domain(state)

    @get("/{schedule_id:str}/preview", responses=documented(404))
    async def preview(
        self,
        hub: HubDep,
        schedule_id: Id,
        n: Annotated[int, QueryParameter(ge=1, le=100, description="How many fires.")] = 10,
    ) -> list[FirePreviewView]:
        """The next `n` fire times, with local time and DST notes."""
        state = await hub.schedules.get(schedule_id)
        fires = state.schedule.preview(hub.clock.now(), n, state.runs)
        return [FirePreviewView.from_domain(f) for f in fires]

    @get("/{schedule_id:str}/slots", responses=documented(404))
    async def slots(
        self, hub: HubDep, schedule_id: Id, limit: Limit = 50, cursor: Cursor = None
    ) -> SlotPage:
        """The slot ledger: what became of each slot, newest first."""
        await hub.schedules.get(schedule_id)  # an unknown schedule is a 404, not an empty page
        return SlotPage.from_domain(await hub.schedules.slots(schedule_id, cursor, limit))
