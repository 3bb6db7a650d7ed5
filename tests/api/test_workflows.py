"""Workflows over the API: a workflow is one object with its steps and their runs; listing,
reading one, cancelling one (audited, acting roles only), problems for unknown ids."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler import chain, group, step
from hub_scheduler.domain.ports import Succeeded
from tests.api.conftest import Api

LEASE = timedelta(seconds=30)


async def test_a_workflow_is_one_object_with_its_steps_and_runs(api: Api) -> None:
    workflow = await api.hub.start_workflow(
        chain(step("syncXero", {"tenant": "acme"}), group("flaky", "syncXero")), name="nightly"
    )
    [claim] = await api.hub.queue.claim("w1", 1, LEASE)  # the first step runs
    response = await api.client.get(f"/api/v1/workflows/{workflow.id}", headers=api.viewer)
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["state"], body["failure_policy"]) == ("nightly", "running", "fail")
    assert [(s["name"], s["job"], s["after"], s["state"]) for s in body["steps"]] == [
        ("syncXero", "syncXero", [], "active"),
        ("flaky", "flaky", ["syncXero"], "blocked"),
        ("syncXero#2", "syncXero", ["syncXero"], "blocked"),
    ]
    first = body["steps"][0]
    assert first["run_id"] == claim.run.id
    run = first["run"]
    assert (run["payload"], run["workflow_step"]) == ({"tenant": "acme"}, "syncXero")
    assert body["counts"] == {"active": 1, "blocked": 2}

    await api.hub.queue.finish(claim, Succeeded())
    await api.hub.workflows.apply([claim.run.id])
    listing = await api.client.get("/api/v1/workflows?limit=10", headers=api.viewer)
    [item] = listing.json()["items"]
    assert (item["id"], item["counts"]) == (workflow.id, {"succeeded": 1, "waiting": 2})
    assert listing.json()["next_cursor"] is None


async def test_cancelling_a_workflow_is_audited_and_needs_an_acting_role(api: Api) -> None:
    workflow = await api.hub.start_workflow(chain("syncXero", "flaky"))
    path = f"/api/v1/workflows/{workflow.id}/cancel"
    refused = await api.client.post(path, headers=api.viewer)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    response = await api.client.post(path, headers=api.admin)
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "cancelled"
    assert [(s["name"], s["state"]) for s in body["steps"]] == [
        ("syncXero", "waiting"),  # its run is cancelled; the event records it next
        ("flaky", "skipped"),
    ]
    assert body["steps"][0]["run"]["state"] == "cancelled"
    [entry] = [e for e in await api.audit() if e.action == "workflow.cancel" and e.outcome == "ok"]
    assert (entry.target, entry.after) == (workflow.id, {"state": "cancelled", "runs_cancelled": 1})


async def test_unknown_workflows_and_bad_cursors_are_problems(api: Api) -> None:
    missing = await api.client.get("/api/v1/workflows/wf_0123456789abcdef", headers=api.viewer)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "wf_0123456789abcdef" in missing.json()["detail"]
    cancel = await api.client.post(
        "/api/v1/workflows/wf_0123456789abcdef/cancel", headers=api.admin
    )
    assert cancel.status_code == 404
    bad = await api.client.get("/api/v1/workflows?cursor=zz", headers=api.viewer)
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
