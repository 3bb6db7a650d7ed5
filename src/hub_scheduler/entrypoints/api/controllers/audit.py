"""The audit trail."""

from __future__ import annotations

from litestar import Controller, get

from hub_scheduler.entrypoints.api.dependencies import HubDep
from hub_scheduler.entrypoints.api.params import Cursor, Limit
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.schemas import AuditPage
from hub_scheduler.entrypoints.api.security import can_read


class AuditController(Controller):
    """``/audit``."""

    path = "/audit"
    tags = ("audit",)
    guards = (can_read,)

    @get("/", responses=documented())
    async def trail(self, hub: HubDep, limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
        """Admin actions and refused attempts, newest first, from every channel (api,
        dashboard, cli, ...)."""
        return AuditPage.from_domain(await hub.audit.list(cursor, limit))
