"""The dashboard's workflows over HTTP: the list, a workflow's page with its steps and runs,
and cancelling one (admins only, audited); the browser test covers the UI."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler import chain, group, step
from hub_scheduler.domain.ports import Succeeded
from tests.api.conftest import Api
from tests.api.test_dashboard_http import _session

LEASE = timedelta(seconds=30)


async def test_the_workflows_page_lists_them_and_links_each(api: Api) -> None:
    workflow = await api.hub.start_workflow(
        chain(step("syncXero", {"tenant": "acme"}), group("flaky", "syncXero")), name="nightly"
    )
    [claim] = await api.hub.queue.claim("w1", 1, LEASE)
    await api.hub.queue.finish(claim, Succeeded())
    await api.hub.workflows.apply([claim.run.id])
    async with _session(api, "JobViewer") as viewer:
        listing = await viewer.client.get("/admin/workflows")
        page = await viewer.client.get(f"/admin/workflows/{workflow.id}")
        run = await viewer.client.get(f"/admin/runs/{claim.run.id}")
    assert listing.status_code == 200
    assert f'href="/admin/workflows/{workflow.id}">nightly</a>' in listing.text
    assert "1 succeeded · 2 waiting" in listing.text
    assert page.status_code == 200
    assert 'id="workflow-state" class="state-running">running<' in page.text
    assert page.text.count('class="step"') == 3
    assert f'href="/admin/runs/{claim.run.id}"' in page.text
    assert 'id="workflow-cancel"' not in page.text  # a viewer cannot act
    assert f'href="/admin/workflows/{workflow.id}">workflow {workflow.id}</a>' in run.text


async def test_an_admin_cancels_a_workflow_from_its_page(api: Api) -> None:
    workflow = await api.hub.start_workflow(chain("syncXero", "flaky"))
    async with _session(api, "SystemAdmin") as admin:
        offered = await admin.client.get(f"/admin/workflows/{workflow.id}")
        done = await admin.act(f"workflows/{workflow.id}/cancel")
        after = await admin.client.get(f"/admin/fragments/workflows/{workflow.id}")
    assert 'id="workflow-cancel"' in offered.text
    assert done.status_code == 200
    assert 'class="state-cancelled">cancelled<' in after.text
    assert 'class="state-skipped">skipped<' in after.text
    assert 'id="workflow-cancel"' not in after.text
    assert [(e.action, e.target, e.channel) for e in await api.audit()][:1] == [
        ("workflow.cancel", workflow.id, "dashboard")
    ]


async def test_an_unknown_workflow_is_a_page_saying_so(api: Api) -> None:
    async with _session(api, "JobViewer") as viewer:
        missing = await viewer.client.get("/admin/workflows/wf_0123456789abcdef")
    assert missing.status_code == 404
    assert "wf_0123456789abcdef" in missing.text
    assert "Traceback" not in missing.text
