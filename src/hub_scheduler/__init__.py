"""hub_scheduler: background jobs for Python apps, fired exactly once per slot.

The names here are the public API; everything else may change between releases.
"""

from importlib.metadata import PackageNotFoundError, version

from hub_scheduler.domain.errors import (
    HubSchedulerError,
    IllegalTransitionError,
    InvalidCronError,
    InvalidJobNameError,
    InvalidScheduleError,
    UnknownTimezoneError,
    ValidationError,
)
from hub_scheduler.domain.model import JobDefinition, Priority, Run, RunState, RunTrigger
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
from hub_scheduler.hub import Hub

try:
    __version__ = version("hub-scheduler")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0"

__all__ = [
    "Cron",
    "Every",
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
    "MisfirePolicy",
    "Once",
    "Priority",
    "RetryAfter",
    "RetryPolicy",
    "Run",
    "RunState",
    "RunTrigger",
    "Schedule",
    "SlotOutcome",
    "UnknownTimezoneError",
    "ValidationError",
    "__version__",
]
