"""Liveness and readiness probes: public, and never rate limited."""

from __future__ import annotations

from litestar import Controller, get
from litestar.exceptions import ServiceUnavailableException

from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.entrypoints.api.dependencies import HubDep
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import StatusView

PUBLIC = {"public": True}


class HealthController(Controller):
    """``/health`` and ``/ready``."""

    tags = ("health",)

    @get("/health", opt=PUBLIC)
    async def health(self) -> StatusView:
        """Liveness: the process answers."""
        return StatusView(status="ok")

    @get("/ready", opt=PUBLIC, responses=documented(503, common=False))
    async def ready(self, hub: HubDep) -> StatusView:
        """Readiness: the store answers (503 problem when it does not)."""
        try:
            await hub.ping()
        except HubSchedulerError:
            raise ServiceUnavailableException("the store is not reachable") from None
        return StatusView(status="ready")
