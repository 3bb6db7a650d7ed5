"""Workflow documents as versioned JSON objects, the same shape in every backend that stores
them (Redis as a string, PostgreSQL as jsonb)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hub_scheduler.domain.model import Priority
from hub_scheduler.domain.workflow import (
    FailurePolicy,
    StepState,
    Workflow,
    WorkflowStep,
)

FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _MS


def _dt(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + int(value) * _MS


def _step_to_json(step: WorkflowStep) -> dict[str, Any]:
    item: dict[str, Any] = {"n": step.name, "job": step.job, "st": step.state.value}
    if step.payload:
        item["pl"] = dict(step.payload)
    if step.priority is not None:
        item["pri"] = int(step.priority)
    if step.after:
        item["after"] = list(step.after)
    if step.run_id is not None:
        item["run"] = step.run_id
    return item


def _step_from_json(item: Mapping[str, Any]) -> WorkflowStep:
    pri = item.get("pri")
    return WorkflowStep(
        name=item["n"],
        job=item["job"],
        payload=dict(item.get("pl") or {}),
        priority=None if pri is None else Priority(pri),
        after=tuple(item.get("after") or ()),
        state=StepState(item["st"]),
        run_id=item.get("run"),
    )


def workflow_to_json(workflow: Workflow) -> dict[str, Any]:
    """The document as a JSON object (``v`` is the format version)."""
    data: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "id": workflow.id,
        "name": workflow.name,
        "created": _ms(workflow.created_at),
        "policy": workflow.policy.value,
        "steps": [_step_to_json(s) for s in workflow.steps],
    }
    if workflow.compensation is not None:
        data["comp"] = _step_to_json(workflow.compensation)
    for key, value in (
        ("cancelled", workflow.cancelled_at),
        ("failed", workflow.failed_at),
        ("finished", workflow.finished_at),
    ):
        if value is not None:
            data[key] = _ms(value)
    return data


def workflow_from_json(data: Mapping[str, Any]) -> Workflow:
    """The document back; `ValueError` for a format this version does not read."""
    if data.get("v") != FORMAT_VERSION:
        raise ValueError(f"workflow format {data.get('v')!r} is not {FORMAT_VERSION}")
    comp = data.get("comp")
    return Workflow(
        id=data["id"],
        name=data["name"],
        created_at=_EPOCH + int(data["created"]) * _MS,
        steps=tuple(_step_from_json(s) for s in data["steps"]),
        policy=FailurePolicy(data["policy"]),
        compensation=None if comp is None else _step_from_json(comp),
        cancelled_at=_dt(data.get("cancelled")),
        failed_at=_dt(data.get("failed")),
        finished_at=_dt(data.get("finished")),
    )


def dumps(workflow: Workflow) -> str:
    """`workflow_to_json` as compact text."""
    return json.dumps(workflow_to_json(workflow), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Workflow:
    """`workflow_from_json` of text."""
    return workflow_from_json(json.loads(text))
