"""Prometheus metrics."""

from __future__ import annotations

from litestar import Controller, Response, get

from hub_scheduler.entrypoints.api.dependencies import HubDep
from hub_scheduler.entrypoints.api.metrics import PROMETHEUS_TEXT, exposition
from hub_scheduler.entrypoints.api.problems import documented
from hub_scheduler.entrypoints.api.security import can_read


class MetricsController(Controller):
    """``/metrics``."""

    path = "/metrics"
    tags = ("metrics",)
    guards = (can_read,)

    @get("/", media_type=PROMETHEUS_TEXT, responses=documented())
    async def metrics(self, hub: HubDep) -> Response[str]:
        """Prometheus text: queue depth, delayed, active, dead letters, pause flags, workers,
        schedulers and their lateness, and per job: outcomes, last success, durations."""
        return Response((await exposition(hub)).decode(), media_type=PROMETHEUS_TEXT)
