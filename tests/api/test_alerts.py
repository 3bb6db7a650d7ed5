"""``/alerts``: what the monitors recorded, for viewers; muting, for admins, audited; firing
alerts named in ``/queue``."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler.domain.alerts import AlertPolicy
from hub_scheduler.domain.ports import EnqueueRequest
from hub_scheduler.testing import RecordingNotifier
from tests.api.conftest import Api


async def test_alerts_lists_what_fired_and_queue_names_it(api: Api) -> None:
    """Runs waiting with no live worker fire no_worker once the monitor ran: GET /alerts
    shows it active and critical, and /queue lists it and says degraded."""
    await api.hub.queue.enqueue([EnqueueRequest("syncXero")])
    policy = AlertPolicy(no_worker_for=timedelta(microseconds=1))
    monitor = api.hub.alert_monitor(RecordingNotifier(), policy=policy)
    await monitor.evaluate()
    await monitor.evaluate()  # pending, then firing (held a microsecond)
    answer = await api.client.get("/api/v1/alerts", headers=api.viewer)
    assert answer.status_code == 200
    [active] = answer.json()["active"]
    assert (active["key"], active["severity"], active["status"]) == (
        "no_worker:queue",
        "critical",
        "firing",
    )
    queue = (await api.client.get("/api/v1/queue", headers=api.viewer)).json()
    assert (queue["alerts"], queue["status"]) == (["no_worker:queue"], "degraded")


async def test_muting_is_an_audited_admin_action(api: Api) -> None:
    """A SystemAdmin mutes a rule for an hour (audited alert.mute, ok); GET /alerts lists the
    mute; a viewer may not mute; an unknown rule is a 400, audited as failed."""
    answer = await api.client.post(
        "/api/v1/alerts/mute", headers=api.admin, json={"target": "run_dead", "minutes": 60}
    )
    assert answer.status_code == 200
    assert answer.json()["target"] == "run_dead"
    mutes = (await api.client.get("/api/v1/alerts", headers=api.viewer)).json()["mutes"]
    assert [m["target"] for m in mutes] == ["run_dead"]
    refused = await api.client.post(
        "/api/v1/alerts/mute", headers=api.viewer, json={"target": "run_dead", "minutes": 1}
    )
    bad = await api.client.post(
        "/api/v1/alerts/mute", headers=api.admin, json={"target": "nonsense", "minutes": 1}
    )
    assert (refused.status_code, bad.status_code) == (403, 400)
    entries = [(e.action, e.target, e.outcome) for e in await api.audit()]
    assert ("alert.mute", "run_dead", "ok") in entries
    assert ("alert.mute", "nonsense", "failed") in entries
