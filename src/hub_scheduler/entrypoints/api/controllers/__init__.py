"""One Litestar `Controller` per resource of the admin API."""

from __future__ import annotations

from litestar import Controller

from hub_scheduler.entrypoints.api.controllers.alerts import AlertsController
from hub_scheduler.entrypoints.api.controllers.audit import AuditController
from hub_scheduler.entrypoints.api.controllers.dead_letters import DeadLettersController
from hub_scheduler.entrypoints.api.controllers.health import HealthController
from hub_scheduler.entrypoints.api.controllers.jobs import JobsController
from hub_scheduler.entrypoints.api.controllers.metrics import MetricsController
from hub_scheduler.entrypoints.api.controllers.queue import QueueController
from hub_scheduler.entrypoints.api.controllers.runs import RunsController
from hub_scheduler.entrypoints.api.controllers.schedules import SchedulesController
from hub_scheduler.entrypoints.api.controllers.workflows import WorkflowsController

CONTROLLERS: tuple[type[Controller], ...] = (
    HealthController,
    JobsController,
    QueueController,
    RunsController,
    DeadLettersController,
    SchedulesController,
    AuditController,
    MetricsController,
    AlertsController,
    WorkflowsController,
)

__all__ = [
    "CONTROLLERS",
    "AlertsController",
    "AuditController",
    "DeadLettersController",
    "HealthController",
    "JobsController",
    "MetricsController",
    "QueueController",
    "RunsController",
    "SchedulesController",
    "WorkflowsController",
]
