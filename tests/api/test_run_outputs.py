"""A run's result and progress over the API and in the dashboard's run fragment."""

from __future__ import annotations

import re
from datetime import timedelta

from hub_scheduler.domain.model import Progress
from hub_scheduler.domain.ports import Succeeded
from tests.api.conftest import Api
from tests.api.test_dashboard_http import _session


async def test_a_run_shows_its_progress_then_its_result(api: Api) -> None:
    """GET /runs/{id}: while active, the latest progress report; once succeeded, the value
    its handler returned (and when it was stored); a listing leaves both out."""
    hub = api.hub
    run_id = await hub.enqueue("syncXero")
    [claim] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
    await hub.backend.results.set_progress(run_id, Progress(hub.clock.now(), 0.4, "page 4/10"))
    active = (await api.client.get(f"/api/v1/runs/{run_id}", headers=api.viewer)).json()
    await hub.backend.results.set_result(run_id, {"synced": 10})
    await hub.queue.finish(claim, Succeeded())
    done = (await api.client.get(f"/api/v1/runs/{run_id}", headers=api.viewer)).json()
    listed = (await api.client.get("/api/v1/jobs/history", headers=api.viewer)).json()
    assert (active["state"], active["result"], active["progress"]) == (
        "active", None, {"at": active["progress"]["at"], "fraction": 0.4,
                         "message": "page 4/10", "state": "STARTED"},
    )  # fmt: skip
    assert (done["state"], done["result"], done["result_stored_at"] is not None) == (
        "succeeded", {"synced": 10}, True,
    )  # fmt: skip
    assert (listed["items"][0]["id"], listed["items"][0]["result"]) == (run_id, None)


async def test_the_run_fragment_shows_progress_live_and_the_result(api: Api) -> None:
    """The dashboard's run fragment shows the progress bar and refreshes itself while the
    run is active; once it succeeded it shows the result and stops refreshing."""
    hub = api.hub
    run_id = await hub.enqueue("syncXero")
    [claim] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
    await hub.backend.results.set_progress(run_id, Progress(hub.clock.now(), 0.5, "halfway"))
    async with _session(api, "JobViewer") as browser:
        live = (await browser.client.get(f"/admin/fragments/runs/{run_id}")).text
        await hub.backend.results.set_result(run_id, ["a", 1])
        await hub.queue.finish(claim, Succeeded())
        final = (await browser.client.get(f"/admin/fragments/runs/{run_id}")).text
    assert re.search(r'<progress max="1" value="0.5">', live) is not None
    assert ("halfway" in live, 'hx-trigger="every 2s' in live) == (True, True)
    result = re.search(r'<pre id="run-result">(.*?)</pre>', final, re.S)
    assert result is not None
    assert result.group(1).split() == ["[", "&#34;a&#34;,", "1", "]"]
    assert 'hx-trigger="every 2s' not in final
