"""The queue as a whole: its health, pause and resume."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.exceptions import ServiceUnavailableException
from litestar.status_codes import HTTP_200_OK

from hub_scheduler.domain.admin import Action
from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.entrypoints.api.auditing import audited
from hub_scheduler.entrypoints.api.dependencies import ActorDep, AdminDep
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import QueueHealthView, QueuePausedView
from hub_scheduler.entrypoints.api.security import can_act, can_read


class QueueController(Controller):
    """``/queue``."""

    path = "/queue"
    tags = ("queue",)
    guards = (can_read,)

    @get("/", responses=documented())
    async def health(self, admin: AdminDep) -> QueueHealthView:
        """Depth per priority, delayed, active, dead letters, workers, schedulers, and an
        overall status: ok, or degraded (paused, or no worker or scheduler alive, or a store
        that may drop runs, such as a Redis whose maxmemory-policy evicts), and the store's
        own vitals under ``backend``; a 503
        problem with ``status_of_queue: down`` when the store does not answer."""
        try:
            health = await admin.queue_health()
        except HubSchedulerError:
            raise ServiceUnavailableException(
                "the store is unavailable", extra={"status_of_queue": "down"}
            ) from None
        return QueueHealthView.from_health(health)

    @post(
        "/pause",
        guards=[can_act],
        opt=audited(Action.QUEUE_PAUSE, "queue"),
        status_code=HTTP_200_OK,
        responses=documented(),
    )
    async def pause(self, admin: AdminDep, actor: ActorDep) -> QueuePausedView:
        """Pause the whole queue: nothing new starts; running jobs finish."""
        await admin.set_queue_paused(actor, paused=True)
        return QueuePausedView(paused=True)

    @post(
        "/resume",
        guards=[can_act],
        opt=audited(Action.QUEUE_RESUME, "queue"),
        status_code=HTTP_200_OK,
        responses=documented(),
    )
    async def resume(self, admin: AdminDep, actor: ActorDep) -> QueuePausedView:
        """Resume the queue."""
        await admin.set_queue_paused(actor, paused=False)
        return QueuePausedView(paused=False)
