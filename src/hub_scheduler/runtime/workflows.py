"""The workflow engine: applies the events backends record as workflow steps' runs end.

Every backend records an event (`Workflows.events`) in the same atomic step that ends a
step's run (or that a dead-letter retry starts one again). Applying it: read the run as it is
now, read the workflow's document, let `Workflow.observe` decide, save the document only if
no one saved it meanwhile (else read both again), then enqueue every step decided to start
under its idempotency key (`Workflow.key_of`: applying a decision twice enqueues one run), and
acknowledge the event. Whoever crashes part way leaves the event in place for the next one,
and every part is safe to repeat, so each step starts exactly once however many workers
apply events at once.

The worker that ended a step's run applies its event at once (`WorkflowEngine.apply`); every
worker also sweeps events older than a few seconds (`sweep`) for those whose applier died.
An event recorded while it was being applied (the run changed again) is kept: after the
acknowledgement the run is read once more and applied again if it moved on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import attrs

from hub_scheduler.domain.admin import cancel_workflow
from hub_scheduler.domain.errors import (
    NotFoundError,
    WorkflowNotFoundError,
)
from hub_scheduler.domain.model import Run, RunState, RunTrigger
from hub_scheduler.domain.ports import (
    Clock,
    EnqueueRequest,
    JobQueue,
    ResultStore,
    RunHistory,
    Workflows,
)
from hub_scheduler.domain.registry import Registry
from hub_scheduler.domain.workflow import (
    WORKFLOW_ID,
    StepState,
    Upstream,
    Workflow,
    WorkflowStep,
    inputs_of,
)

log = logging.getLogger("hub_scheduler.workflows")

#: Dead-letter retries of retries followed back to a step's current run, at most.
_LINEAGE = 50
#: Saves tried per event before leaving it to a later sweep (each lost race is another
#: applier's progress, so this is only reached under heavy contention on one workflow).
_SAVE_TRIES = 20


@attrs.define
class WorkflowEngine:
    """Starts workflows and applies their events (see the module doc)."""

    workflows: Workflows
    queue: JobQueue
    history: RunHistory
    registry: Registry
    clock: Clock
    results: ResultStore | None = None
    #: How long an event is left to the worker that recorded it before sweeps take it.
    grace: timedelta = timedelta(seconds=2)
    retention: timedelta = timedelta(days=90)

    async def start(self, workflow: Workflow) -> Workflow:
        """Store a new workflow and enqueue its first steps; returns it as saved."""
        await self.workflows.create(workflow, self.clock.now())
        await self.apply([workflow.id])
        return (await self.workflows.get(workflow.id))[0]

    async def apply(self, events: Iterable[str]) -> None:
        """Apply events (run ids of steps' runs, or workflow ids) and acknowledge them."""
        pending = list(dict.fromkeys(events))
        while pending:
            seen: dict[str, RunState | None] = {}
            for event in pending:
                applied, state = await self._apply_one(event)
                if applied:
                    seen[event] = state
            await self.workflows.ack(list(seen))
            pending = await self._moved_on(seen)

    async def sweep(self, limit: int = 100) -> int:
        """Apply events older than `grace` (their recorder did not); returns how many."""
        events = await self.workflows.events(self.clock.now() - self.grace, limit)
        if events:
            await self.apply(events)
        return len(events)

    async def cancel(self, workflow_id: str) -> Workflow:
        """Cancel a workflow (`hub_scheduler.domain.admin.cancel_workflow`). Raises
        `WorkflowNotFoundError`."""
        cancelled, _ = await cancel_workflow(self.workflows, self.queue, self.clock, workflow_id)
        return cancelled

    async def upstream(self, workflow_id: str, step: str) -> dict[str, Upstream]:
        """What step `step` waited for: each input's end and returned value."""
        try:
            workflow, _ = await self.workflows.get(workflow_id)
        except WorkflowNotFoundError:
            return {}
        found: dict[str, Upstream] = {}
        for member in inputs_of(workflow, step):
            value: Any = None
            if member.state is StepState.SUCCEEDED and member.run_id and self.results:
                stored = await self.results.result(member.run_id)
                value = None if stored is None else stored.value
            found[member.name] = Upstream(member.state, value)
        return found

    # --- applying ---------------------------------------------------------------------------

    async def _apply_one(self, event: str) -> tuple[bool, RunState | None]:
        """Apply one event: whether it was (False: left for a later sweep), and the state of
        the run it named as applied (None for a workflow's own event, or a run gone)."""
        if WORKFLOW_ID.match(event):
            await self._start_steps(event)
            return True, None
        try:
            run = await self.history.get(event)
        except NotFoundError:
            return True, None
        if run.workflow_id is None:
            return True, None
        for _ in range(_SAVE_TRIES):
            try:
                workflow, version = await self.workflows.get(run.workflow_id)
            except WorkflowNotFoundError:
                return True, None
            ancestors = await self._ancestors(run, workflow.current_run(run))
            observed = workflow.observe(run, self.clock.now(), ancestors)
            if observed == workflow or await self.workflows.save(observed, version):
                break
        else:
            log.warning("workflow %s: too many concurrent saves; left for a sweep", run.workflow_id)
            return False, None
        await self._start_steps(run.workflow_id)
        return True, run.state

    async def _ancestors(self, run: Run, current: str | None) -> frozenset[str]:
        """The origins of `run`'s origin, back to `current` (a retry of a retry whose
        parent's events were applied later than its own); empty when not needed."""
        if current is None or current in {run.id, run.origin_run_id}:
            return frozenset()
        found: set[str] = set()
        origin = run.origin_run_id
        while origin is not None and origin != current and len(found) < _LINEAGE:
            try:
                origin = (await self.history.get(origin)).origin_run_id
            except NotFoundError:
                break
            if origin is not None:
                found.add(origin)
        return frozenset(found)

    async def _start_steps(self, workflow_id: str) -> None:
        """Enqueue the steps decided to start (idempotently), then record their run ids."""
        try:
            workflow, _ = await self.workflows.get(workflow_id)
        except WorkflowNotFoundError:
            return
        starting = workflow.starting()
        if not starting:
            return
        answers = await self.queue.enqueue([self._request(workflow, s) for s in starting])
        runs = {s.name: a.run_id for s, a in zip(starting, answers, strict=True)}
        for _ in range(_SAVE_TRIES):
            workflow, version = await self.workflows.get(workflow_id)
            recorded = workflow.started(runs)
            if recorded == workflow or await self.workflows.save(recorded, version):
                return

    def _request(self, workflow: Workflow, member: WorkflowStep) -> EnqueueRequest:
        return EnqueueRequest(
            job=member.job,
            payload=member.payload,
            priority=member.priority or self.registry.priority(member.job),
            idempotency_key=workflow.key_of(member),
            idempotency_window=self.retention,
            trigger=RunTrigger.WORKFLOW,
            workflow_id=workflow.id,
            workflow_step=member.name,
        )

    async def _moved_on(self, seen: dict[str, RunState | None]) -> list[str]:
        """Runs among `seen` whose state changed since they were applied (their new event
        may have been acknowledged with the old one)."""
        ids = [event for event, state in seen.items() if state is not None]
        moved = []
        for run_id in ids:
            try:
                run = await self.history.get(run_id)
            except NotFoundError:
                continue
            if run.state is not seen[run_id] and run.workflow_id is not None:
                moved.append(run_id)
        return moved
