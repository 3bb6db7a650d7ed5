"""taskiq's result backend on the hub: ``await task.wait_result()`` waits for the run.

A result is ready once the run is final (succeeded, dead or cancelled), so intermediate
failures that are retried never show as the result. The value comes from the hub's
`ResultStore` (on Redis: taskiq-redis's result backend, in the hub's namespace).
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from taskiq import AsyncResultBackend, TaskiqResult
from taskiq.depends.progress_tracker import TaskProgress, TaskState

from hub_scheduler.domain.errors import HubSchedulerError, RunNotFoundError
from hub_scheduler.domain.model import FINAL_STATES, Progress, RunState
from hub_scheduler.domain.ports import Clock, ResultStore, RunHistory

logger = logging.getLogger("hub_scheduler.taskiq")

_T = TypeVar("_T")


class RunFailedError(Exception):
    """What `wait_result` reports for a run that did not succeed: its last error."""

    def __init__(self, run_id: str, state: str, error_type: str, message: str) -> None:
        self.run_id = run_id
        self.state = state
        self.error_type = error_type
        super().__init__(f"run {run_id} is {state}: {error_type}: {message}".rstrip(": "))


class HubResultBackend(AsyncResultBackend[_T]):
    """`AsyncResultBackend` over the hub's run history and `ResultStore`."""

    def __init__(self, history: RunHistory, results: ResultStore, clock: Clock) -> None:
        self._history = history
        self._results = results
        self._clock = clock

    async def set_result(self, task_id: str, result: TaskiqResult[_T]) -> None:
        """Keep a successful attempt's return value (failures live in the run's attempts);
        one that cannot be kept (not JSON, too large) is logged and dropped."""
        if result.is_err:
            return
        value = result.model_dump(mode="json")["return_value"]
        if value is None:
            return
        try:
            await self._results.set_result(task_id, value)
        except HubSchedulerError as exc:
            logger.warning("task %s: %s", task_id, exc)

    async def is_result_ready(self, task_id: str) -> bool:
        """True once the run is final."""
        try:
            run = await self._history.get(task_id)
        except RunNotFoundError:
            return False
        return run.state in FINAL_STATES

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[_T]:
        """The run's outcome as a taskiq result: the value it returned, or its last error."""
        del with_logs  # logs are not collected
        run = await self._history.get(task_id)
        took = run.duration.total_seconds() if run.duration else 0.0
        if run.state is RunState.SUCCEEDED:
            stored = await self._results.result(task_id)
            return TaskiqResult(
                is_err=False,
                log=None,
                return_value=None if stored is None else stored.value,
                execution_time=took,
            )
        error = run.error
        failure = RunFailedError(
            task_id,
            run.state.value,
            error.type if error else "",
            error.message if error else "",
        )
        return TaskiqResult(
            is_err=True, log=None, return_value=None, execution_time=took, error=failure
        )

    async def set_progress(self, task_id: str, progress: TaskProgress[Any]) -> None:
        """Keep a task's progress report (taskiq's `ProgressTracker`)."""
        state = progress.state.value if isinstance(progress.state, TaskState) else progress.state
        meta = json.loads(json.dumps(progress.meta, default=str))
        fraction, message = None, ""
        if isinstance(meta, dict):
            raw = meta.get("fraction")
            fraction = float(raw) if isinstance(raw, int | float) and 0 <= raw <= 1 else None
            message = str(meta.get("message", ""))
        report = Progress(self._clock.now(), fraction, message, str(state), meta)
        await self._results.set_progress(task_id, report)

    async def get_progress(self, task_id: str) -> TaskProgress[Any] | None:
        """The latest progress report, as taskiq's `TaskProgress`."""
        report = await self._results.progress(task_id)
        if report is None:
            return None
        meta = report.meta
        if meta is None:
            meta = {"fraction": report.fraction, "message": report.message}
        return TaskProgress(state=report.state, meta=meta)
