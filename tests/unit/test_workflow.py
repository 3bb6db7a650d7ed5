"""Building workflows: what `chain` and `group` wait for, step names, and flows refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub_scheduler.adapters.workflow_json import dumps, loads
from hub_scheduler.domain.errors import InvalidJobError
from hub_scheduler.domain.workflow import (
    MAX_STEPS,
    FailurePolicy,
    StepState,
    Workflow,
    chain,
    group,
    new_workflow_id,
    step,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _shape(workflow: Workflow) -> list[tuple[str, tuple[str, ...], StepState]]:
    return [(s.name, s.after, s.state) for s in workflow.steps]


def test_a_chain_of_groups_waits_for_every_member_of_the_group_before() -> None:
    flow = chain("fetch", group("a", chain("b", "c")), group("d", "e", then="report"))
    workflow = Workflow.new(new_workflow_id(), flow, NOW)
    assert _shape(workflow) == [
        ("fetch", (), StepState.STARTING),
        ("a", ("fetch",), StepState.BLOCKED),
        ("b", ("fetch",), StepState.BLOCKED),
        ("c", ("b",), StepState.BLOCKED),
        ("d", ("a", "c"), StepState.BLOCKED),
        ("e", ("a", "c"), StepState.BLOCKED),
        ("report", ("d", "e"), StepState.BLOCKED),
    ]
    assert workflow.name == "fetch"


def test_repeated_jobs_get_numbered_names_and_given_names_are_kept() -> None:
    flow = group("a", "a", step("a", name="a#2"), then=step("a", {"x": 1}, name="merge"))
    workflow = Workflow.new(new_workflow_id(), flow, NOW)
    assert [s.name for s in workflow.steps] == ["a", "a#3", "a#2", "merge"]
    assert workflow.steps[-1].payload == {"x": 1}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (chain, "at least one step"),
        (group, "at least one step"),
        (
            lambda: Workflow.new("wf_1", group(step("a", name="x"), step("b", name="x")), NOW),
            "twice",
        ),
        (lambda: Workflow.new("wf_1", step("a", name="compensate"), NOW), "not allowed"),
        (lambda: Workflow.new("wf_1", step("a", name="no spaces"), NOW), "not allowed"),
        (lambda: Workflow.new("wf_1", "a", NOW, policy=FailurePolicy.COMPENSATE), "COMPENSATE"),
        (lambda: Workflow.new("wf_1", "a", NOW, compensate="undo"), "COMPENSATE"),
        (lambda: Workflow.new("wf_1", group(*["a"] * (MAX_STEPS + 1)), NOW), "1 to 500"),
    ],
)
def test_bad_flows_are_refused_with_the_reason(build: object, message: str) -> None:
    with pytest.raises(InvalidJobError, match=message):
        build()  # type: ignore[operator]


def test_a_document_survives_its_json_form() -> None:
    workflow = Workflow.new(
        new_workflow_id(), chain(step("a", {"n": 1}, priority="high"), "b"), NOW,
        name="nightly", policy=FailurePolicy.COMPENSATE, compensate=step("undo"),
    )  # fmt: skip
    assert loads(dumps(workflow)) == workflow
    with pytest.raises(ValueError, match="format"):
        loads('{"v": 99}')
