"""Job metrics and Prometheus output reflect what ran."""

from __future__ import annotations

from datetime import timedelta

from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp
from tests.api.conftest import Api


async def _run_twice(api: Api) -> None:
    """One success and one dead letter of syncXero, through the queue."""
    await api.hub.enqueue("syncXero")
    await api.hub.enqueue("syncXero")
    ok, bad = await api.hub.queue.claim("w1", 2, timedelta(seconds=30))
    await api.hub.queue.finish(ok, Succeeded())
    await api.hub.queue.finish(bad, Failed(ErrorInfo("ValueError", "no"), GiveUp(1)))


async def test_job_metrics_count_outcomes_per_window(api: Api) -> None:
    """/jobs/metrics: one success and one dead letter in every window; rate 0.5."""
    await _run_twice(api)
    body = (await api.client.get("/api/v1/jobs/metrics", headers=api.viewer)).json()
    sync = next(item for item in body if item["job"] == "syncXero")
    for window in ("1h", "24h", "7d", "90d"):
        counts = sync["windows"][window]
        assert (counts["succeeded"], counts["dead"], counts["success_rate"]) == (1, 1, 0.5)
    assert len(sync["hourly"]) == 24
    assert sync["last_success"] is not None
    jobs = (await api.client.get("/api/v1/jobs", headers=api.viewer)).json()
    assert next(j for j in jobs if j["name"] == "syncXero")["last_24h"] == {
        "succeeded": 1,
        "failed": 0,
        "dead": 1,
    }


async def test_prometheus_text_has_queue_and_job_series(api: Api) -> None:
    """/metrics is Prometheus text with queue depth, dead letters and per-job outcomes."""
    await _run_twice(api)
    await api.hub.queue.pause("flaky")
    response = await api.client.get("/api/v1/metrics", headers=api.viewer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(response.text.splitlines())
    assert 'hub_scheduler_queue_depth{priority="normal"} 0.0' in lines
    assert "hub_scheduler_dead_letters 1.0" in lines
    assert 'hub_scheduler_job_runs_total{job="syncXero",outcome="succeeded"} 1.0' in lines
    assert 'hub_scheduler_job_runs_total{job="syncXero",outcome="dead"} 1.0' in lines
    assert 'hub_scheduler_job_paused{job="flaky"} 1.0' in lines
    assert any(
        line.startswith("hub_scheduler_job_last_success_timestamp_seconds") for line in lines
    )


async def test_queue_health_reports_workers_schedulers_and_status(api: Api) -> None:
    """/queue: degraded with no worker or scheduler alive; the scheduler's lateness shows."""
    from hub_scheduler.domain.ports import SchedulerInfo, WorkerInfo  # noqa: PLC0415

    body = (await api.client.get("/api/v1/queue", headers=api.viewer)).json()
    assert (body["status"], body["workers"], body["schedulers"]) == ("degraded", [], [])
    now = api.hub.clock.now()
    worker = WorkerInfo("w1", "host", 1, 5, 0, now)
    await api.hub.presence.worker_seen(worker, timedelta(seconds=15))
    late = SchedulerInfo("s1", now, timedelta(milliseconds=2), timedelta(milliseconds=30))
    await api.hub.presence.scheduler_seen(late, timedelta(seconds=15))
    body = (await api.client.get("/api/v1/queue", headers=api.viewer)).json()
    assert body["status"] == "ok"
    assert [w["id"] for w in body["workers"]] == ["w1"]
    assert body["schedulers"][0]["lateness_p99_seconds"] == 0.03
