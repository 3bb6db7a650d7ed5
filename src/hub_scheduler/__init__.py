"""hub_scheduler: background jobs for Python apps, fired exactly once per slot.

The names here are the public API; everything else may change between releases. The admin
API's names (`create_app`, `admin_router`, `dashboard_router`, `jwt_auth`) load Litestar on
first use, so ``import hub_scheduler`` stays light for workers and the CLI.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from hub_scheduler.adapters.backends import open_backend, register_backend
from hub_scheduler.adapters.notifiers import LoggingNotifier, WebhookNotifier
from hub_scheduler.domain.admin import BulkAction, RunSelection
from hub_scheduler.domain.errors import (
    HubSchedulerError,
    IllegalTransitionError,
    InvalidCronError,
    InvalidJobNameError,
    InvalidScheduleError,
    RunCancelledError,
    UnknownTimezoneError,
    ValidationError,
    WorkflowNotFoundError,
)
from hub_scheduler.domain.limits import OnDuplicate, RateLimit, Uniqueness
from hub_scheduler.domain.model import JobDefinition, Priority, Run, RunState, RunTrigger
from hub_scheduler.domain.ports import Backend, BackendConfig
from hub_scheduler.domain.registry import Job, JobContext
from hub_scheduler.domain.retry import GiveUp, RetryAfter, RetryPolicy
from hub_scheduler.domain.schedule import (
    Cron,
    Every,
    FirePreview,
    MisfirePolicy,
    Once,
    Schedule,
    SlotOutcome,
)
from hub_scheduler.domain.workflow import (
    FailurePolicy,
    StepState,
    Upstream,
    Workflow,
    WorkflowState,
    chain,
    group,
    step,
)
from hub_scheduler.hub import Hub

if TYPE_CHECKING:
    from hub_scheduler.entrypoints.api.app import create_app
    from hub_scheduler.entrypoints.api.dashboard import dashboard_router
    from hub_scheduler.entrypoints.api.routes import admin_router
    from hub_scheduler.entrypoints.api.security import jwt_auth

#: Public names imported when first used: name -> module.
_ON_FIRST_USE = {
    "admin_router": "hub_scheduler.entrypoints.api.routes",
    "create_app": "hub_scheduler.entrypoints.api.app",
    "dashboard_router": "hub_scheduler.entrypoints.api.dashboard",
    "jwt_auth": "hub_scheduler.entrypoints.api.security",
}


def __getattr__(name: str) -> Any:
    """The admin API's names, imported on first use."""
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module 'hub_scheduler' has no attribute {name!r}")
    value = getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
    globals()[name] = value
    return value


try:
    __version__ = version("hub-scheduler")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0"

__all__ = [
    "Backend",
    "BackendConfig",
    "BulkAction",
    "Cron",
    "Every",
    "FailurePolicy",
    "FirePreview",
    "GiveUp",
    "Hub",
    "HubSchedulerError",
    "IllegalTransitionError",
    "InvalidCronError",
    "InvalidJobNameError",
    "InvalidScheduleError",
    "Job",
    "JobContext",
    "JobDefinition",
    "LoggingNotifier",
    "MisfirePolicy",
    "OnDuplicate",
    "Once",
    "Priority",
    "RateLimit",
    "RetryAfter",
    "RetryPolicy",
    "Run",
    "RunCancelledError",
    "RunSelection",
    "RunState",
    "RunTrigger",
    "Schedule",
    "SlotOutcome",
    "StepState",
    "Uniqueness",
    "UnknownTimezoneError",
    "Upstream",
    "ValidationError",
    "WebhookNotifier",
    "Workflow",
    "WorkflowNotFoundError",
    "WorkflowState",
    "__version__",
    "admin_router",
    "chain",
    "create_app",
    "dashboard_router",
    "group",
    "jwt_auth",
    "open_backend",
    "register_backend",
    "step",
]
