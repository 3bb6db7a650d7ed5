"""Workflows: runs that wait for other runs (chains, groups with a callback, any DAG).

A workflow is a set of named steps, each one run of a job, with the steps it waits for. It is
built with `step`, `chain` and `group`, started by `Hub.start_workflow`, and kept as one
versioned document (`Workflow`) that only `Workflow.observe` and `Workflow.cancel` change —
pure functions of the document and a member run's latest state, so every backend stores the
same thing and the rules are tested once (including a property test over random DAGs).

How it stays exactly-once under crashes and races (see runtime/workflows.py): every backend
records, in the same atomic step that ends a member run, an event naming the run; whoever
applies the event (the worker that ended it, at once, or any worker's sweep later) reads the
document, applies `observe`, and saves it only if no one else saved meanwhile (a version
check). A step decided to start is STARTING until its run is seen: it is enqueued under the
idempotency key `Workflow.key_of`, so applying the same decision twice enqueues one run.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from hub_scheduler.domain.errors import InvalidJobError
from hub_scheduler.domain.model import Payload, Priority, Run, RunState, new_run_id

#: A workflow id: ``wf_`` and 16 hex digits (a run id's kind of randomness).
WORKFLOW_ID = re.compile(r"^wf_[0-9a-f]{16}$")
#: Steps per workflow at most (the document is read and written whole at each event).
MAX_STEPS = 500
_STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class FailurePolicy(enum.StrEnum):
    """What a workflow does when a member run ends dead (every attempt failed) or cancelled."""

    FAIL = "fail"
    """Its dependents wait (the workflow is failed); retrying the dead member from the
    dead-letter queue resumes them. Branches that do not depend on it go on."""
    CONTINUE = "continue"
    """Its dependents run anyway (`JobContext.upstream` reports what each input ended as)."""
    COMPENSATE = "compensate"
    """As FAIL, and the workflow's compensating step runs once, at the first failure."""


class StepState(enum.StrEnum):
    """Where one step of a workflow is."""

    BLOCKED = "blocked"
    """Waiting for the steps it depends on (or held by a failed one)."""
    STARTING = "starting"
    """Its inputs are final: its run is being enqueued."""
    WAITING = "waiting"
    """Its run is queued or delayed (or waiting for a retry)."""
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    """Never ran: the workflow was cancelled first."""


#: Step states after which the step changes only through a dead-letter retry.
DONE = frozenset({StepState.SUCCEEDED, StepState.DEAD, StepState.CANCELLED, StepState.SKIPPED})
_FAILED = frozenset({StepState.DEAD, StepState.CANCELLED})
_OF_RUN = {
    RunState.QUEUED: StepState.WAITING,
    RunState.DELAYED: StepState.WAITING,
    RunState.RETRY_SCHEDULED: StepState.WAITING,
    RunState.ACTIVE: StepState.ACTIVE,
    RunState.SUCCEEDED: StepState.SUCCEEDED,
    RunState.DEAD: StepState.DEAD,
    RunState.CANCELLED: StepState.CANCELLED,
}


class WorkflowState(enum.StrEnum):
    """The state of a whole workflow, derived from its steps."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    """Every step succeeded."""
    FAILED = "failed"
    """A step ended dead or cancelled (under CONTINUE: and every step is done)."""
    CANCELLED = "cancelled"


# --- building ----------------------------------------------------------------------------


@attrs.frozen
class Step:
    """One step: a run of `job` with `payload`; `name` identifies it in the workflow (the
    job's name by default, made unique with ``#2``, ``#3``... when a job appears twice)."""

    job: str
    payload: Payload = attrs.field(factory=dict)
    name: str | None = None
    priority: Priority | None = None


@attrs.frozen
class Flow:
    """Steps and what each waits for; `heads` start first, `tails` end it (what a step
    chained after this flow waits for). Build with `step`, `chain` and `group`."""

    steps: tuple[tuple[Step, frozenset[int]], ...]
    heads: frozenset[int]
    tails: frozenset[int]


FlowLike = Flow | Step | str


def step(
    job: str,
    payload: Payload | None = None,
    *,
    name: str | None = None,
    priority: Priority | int | str | None = None,
) -> Flow:
    """A flow of one step (a string is taken as ``step(job)`` wherever a flow is expected)."""
    return _flow(
        Step(job, dict(payload or {}), name, None if priority is None else Priority.parse(priority))
    )


def _flow(item: FlowLike) -> Flow:
    if isinstance(item, Flow):
        return item
    one = Step(item) if isinstance(item, str) else item
    return Flow(((one, frozenset()),), frozenset({0}), frozenset({0}))


def _shifted(
    flow: Flow, by: int, extra: frozenset[int] = frozenset()
) -> list[tuple[Step, frozenset[int]]]:
    return [
        (s, frozenset(d + by for d in deps) | (extra if i in flow.heads else frozenset()))
        for i, (s, deps) in enumerate(flow.steps)
    ]


def chain(*items: FlowLike) -> Flow:
    """Each item runs after the one before it has ended (a group: all its members); a step
    receives the results of the steps it waited for (`JobContext.upstream`)."""
    if not items:
        raise InvalidJobError("workflow", "a chain needs at least one step")
    flows = [_flow(i) for i in items]
    steps: list[tuple[Step, frozenset[int]]] = list(flows[0].steps)
    heads, tails = flows[0].heads, flows[0].tails
    for flow in flows[1:]:
        by = len(steps)
        steps += _shifted(flow, by, tails)
        tails = frozenset(t + by for t in flow.tails)
    return Flow(tuple(steps), heads, tails)


def group(*items: FlowLike, then: FlowLike | None = None) -> Flow:
    """The items run side by side; `then` (the callback) runs once all of them have ended
    and receives all their results (fan-out, fan-in)."""
    if not items:
        raise InvalidJobError("workflow", "a group needs at least one step")
    steps: list[tuple[Step, frozenset[int]]] = []
    heads: set[int] = set()
    tails: set[int] = set()
    for flow in map(_flow, items):
        by = len(steps)
        steps += _shifted(flow, by)
        heads |= {h + by for h in flow.heads}
        tails |= {t + by for t in flow.tails}
    together = Flow(tuple(steps), frozenset(heads), frozenset(tails))
    return together if then is None else chain(together, then)


# --- the stored document -------------------------------------------------------------------


@attrs.frozen
class WorkflowStep:
    """One step as stored: its definition, what it waits for, and its run's latest state."""

    name: str
    job: str
    payload: Payload = attrs.field(factory=dict)
    priority: Priority | None = None
    after: tuple[str, ...] = ()
    state: StepState = StepState.BLOCKED
    run_id: str | None = None


@attrs.frozen
class Workflow:
    """A started workflow: one document, saved whole under a version (see module doc).

    Attributes:
        id: ``wf_`` and 26 characters, like a run id.
        name: a label for people (the API and dashboard show it).
        compensation: the COMPENSATE policy's step (named ``compensate``), or None.
        failed_at: when a step first ended dead or cancelled (the compensation's trigger).
    """

    id: str
    name: str
    created_at: datetime
    steps: tuple[WorkflowStep, ...]
    policy: FailurePolicy = FailurePolicy.FAIL
    compensation: WorkflowStep | None = None
    cancelled_at: datetime | None = None
    failed_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def new(
        cls,
        workflow_id: str,
        flow: FlowLike,
        now: datetime,
        *,
        name: str = "",
        policy: FailurePolicy = FailurePolicy.FAIL,
        compensate: FlowLike | None = None,
    ) -> Workflow:
        """The document of a workflow about to start: its first steps STARTING. Raises
        `InvalidJobError` for an empty or oversized flow, a bad or repeated step name, or a
        compensating step without the COMPENSATE policy (or the reverse)."""
        flow = _flow(flow)
        if not 1 <= len(flow.steps) <= MAX_STEPS:
            raise InvalidJobError("workflow", f"must have 1 to {MAX_STEPS} steps")
        if (compensate is None) != (policy is not FailurePolicy.COMPENSATE):
            raise InvalidJobError(
                "workflow", "a compensating step goes with the COMPENSATE policy, and only it"
            )
        names = _names([s for s, _ in flow.steps])
        steps = tuple(
            WorkflowStep(
                names[i],
                s.job,
                s.payload,
                s.priority,
                tuple(sorted(names[d] for d in deps)),
                StepState.STARTING if not deps else StepState.BLOCKED,
            )
            for i, (s, deps) in enumerate(flow.steps)
        )
        extra = None
        if compensate is not None:
            comp = _flow(compensate)
            if len(comp.steps) != 1:
                raise InvalidJobError("workflow", "the compensation must be one step")
            s = comp.steps[0][0]
            extra = WorkflowStep("compensate", s.job, s.payload, s.priority)
        return cls(workflow_id, name or steps[0].job, now, steps, policy, extra)

    @property
    def state(self) -> WorkflowState:
        """RUNNING, SUCCEEDED, FAILED or CANCELLED (see `WorkflowState`)."""
        if self.cancelled_at is not None:
            return WorkflowState.CANCELLED
        states = [s.state for s in self.steps]
        if all(s is StepState.SUCCEEDED for s in states):
            return WorkflowState.SUCCEEDED
        if any(s in _FAILED for s in states) and (
            self.policy is not FailurePolicy.CONTINUE or all(s in DONE for s in states)
        ):
            return WorkflowState.FAILED
        return WorkflowState.RUNNING

    def get(self, name: str) -> WorkflowStep | None:
        """The step called `name` (``compensate`` for the compensation), or None."""
        for s in self.members():
            if s.name == name:
                return s
        return None

    def members(self) -> tuple[WorkflowStep, ...]:
        """The steps, then the compensation if there is one."""
        return self.steps + ((self.compensation,) if self.compensation else ())

    def key_of(self, member: WorkflowStep) -> str:
        """The idempotency key a member's run is enqueued under (one run per decision)."""
        return f"wf:{self.id}:{member.name}"

    def starting(self) -> list[WorkflowStep]:
        """Members decided to start whose run is not known yet (to enqueue, idempotently)."""
        return [s for s in self.members() if s.state is StepState.STARTING and s.run_id is None]

    def started(self, runs: Mapping[str, str]) -> Workflow:
        """This document with the runs enqueued for STARTING steps (step name -> run id);
        a step whose run was seen meanwhile is left as it is."""
        flow = self
        for member in self.members():
            run_id = runs.get(member.name)
            if run_id is not None and member.state is StepState.STARTING and member.run_id is None:
                flow = flow._with(attrs.evolve(member, state=StepState.WAITING, run_id=run_id))
        return flow

    def current_run(self, run: Run) -> str | None:
        """The run id the step of `run` has now (None: none yet, or no such step)."""
        member = self.get(run.workflow_step or "")
        return None if member is None else member.run_id

    def observe(self, run: Run, now: datetime, ancestors: frozenset[str] = frozenset()) -> Workflow:
        """This document after seeing `run` (a member's run, in its latest state): the step
        follows the run; steps whose inputs are all done start (or stay held, per the
        policy); the compensation starts at the first failure.

        A dead-letter retry replaces the step's run: `run` is taken when the step's current
        run is it, its origin, or one of `ancestors` (the origins of its origin, for
        retries of retries seen out of order). Any other run (an older attempt series)
        changes nothing; nor does anything once the workflow is cancelled, but its runs'
        states."""
        member = self.get(run.workflow_step or "")
        if member is None:
            return self
        current = member.run_id
        if current is not None and current not in {run.id, run.origin_run_id, *ancestors}:
            return self
        if member.state in DONE and run.id == current:  # a done step changes by a retry only
            return self
        updated = attrs.evolve(member, state=_OF_RUN[run.state], run_id=run.id)
        return self._with(updated)._settle(now)

    def cancel(self, now: datetime) -> Workflow:
        """Cancelled: steps not started are SKIPPED (the caller cancels the runs still
        unfinished, whose events then record their end)."""
        if self.cancelled_at is not None:
            return self
        steps = tuple(
            attrs.evolve(s, state=StepState.SKIPPED)
            if s.state is StepState.BLOCKED or (s.state is StepState.STARTING and s.run_id is None)
            else s
            for s in self.steps
        )
        return attrs.evolve(self, steps=steps, cancelled_at=now)._settle(now)

    def _with(self, member: WorkflowStep) -> Workflow:
        if self.compensation is not None and member.name == self.compensation.name:
            return attrs.evolve(self, compensation=member)
        return attrs.evolve(
            self, steps=tuple(member if s.name == member.name else s for s in self.steps)
        )

    def _settle(self, now: datetime) -> Workflow:
        flow = self
        if flow.cancelled_at is None:
            by_name = {s.name: s for s in flow.steps}
            started = []
            for s in flow.steps:
                if s.state is not StepState.BLOCKED:
                    continue
                inputs = [by_name[a].state for a in s.after]
                if not all(i in DONE for i in inputs):
                    continue
                if flow.policy is FailurePolicy.CONTINUE or all(
                    i is StepState.SUCCEEDED for i in inputs
                ):
                    started.append(s.name)
            if started:
                flow = attrs.evolve(
                    flow,
                    steps=tuple(
                        attrs.evolve(s, state=StepState.STARTING) if s.name in started else s
                        for s in flow.steps
                    ),
                )
            failing = any(s.state in _FAILED for s in flow.steps)
            if failing and flow.failed_at is None:
                flow = attrs.evolve(flow, failed_at=now)
                if flow.compensation is not None and flow.compensation.state is StepState.BLOCKED:
                    flow = attrs.evolve(
                        flow, compensation=attrs.evolve(flow.compensation, state=StepState.STARTING)
                    )
        busy = any(
            s.state in {StepState.STARTING, StepState.WAITING, StepState.ACTIVE}
            for s in flow.members()
        )
        done = flow.state is not WorkflowState.RUNNING and not busy
        finished = (flow.finished_at or now) if done else None
        return flow if finished == flow.finished_at else attrs.evolve(flow, finished_at=finished)


def new_workflow_id() -> str:
    """A fresh workflow id (`WORKFLOW_ID`)."""
    return "wf_" + new_run_id()


def _names(steps: Sequence[Step]) -> list[str]:
    """Each step's name: its own, else its job's, with ``#2``... for a repeated job."""
    names: list[str] = []
    seen: dict[str, int] = {}
    given = {s.name for s in steps if s.name}
    for s in steps:
        if s.name is not None:
            name = s.name
        else:
            seen[s.job] = seen.get(s.job, 0) + 1
            name = s.job if seen[s.job] == 1 else f"{s.job}#{seen[s.job]}"
            while name in given:
                seen[s.job] += 1
                name = f"{s.job}#{seen[s.job]}"
        if not _STEP_NAME.match(name.replace("#", "-")) or name == "compensate":
            raise InvalidJobError("workflow", f"step name {name!r} is not allowed")
        if name in names:
            raise InvalidJobError("workflow", f"step name {name!r} is used twice")
        names.append(name)
    return names


@attrs.frozen
class Upstream:
    """What a step waited for, as `JobContext.upstream` reports it: how that step ended and
    the value its handler returned (None when it returned nothing or did not succeed)."""

    state: StepState
    value: Any = None


def inputs_of(flow: Workflow, name: str) -> Iterable[WorkflowStep]:
    """The steps step `name` waits for."""
    member = flow.get(name)
    if member is None:
        return ()
    by_name: Mapping[str, WorkflowStep] = {s.name: s for s in flow.steps}
    return [by_name[a] for a in member.after]
