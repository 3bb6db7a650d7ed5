"""Job metrics and Prometheus output reflect what ran."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest

from hub_scheduler.domain.histogram import Histogram, bucket_of, representative
from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Failed, JobStats, Succeeded, WindowStats
from hub_scheduler.domain.retry import GiveUp
from hub_scheduler.entrypoints.api.metrics import HubCollector
from hub_scheduler.testing import FakeClock, hub_for_tests
from tests.api.conftest import Api, build_app, client_for


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


async def test_job_metrics_give_each_hour_its_duration_percentiles(api: Api) -> None:
    """/jobs/metrics: the hour of an attempt of 250 ms reports its p50/p95 (the estimate of
    its bucket), the hours without a run null (not 0)."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    await hub.enqueue("syncXero")
    [claim] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
    clock.advance(0.25)
    await hub.queue.finish(claim, Succeeded())
    async with client_for(build_app(hub)) as client:
        body = (await client.get("/api/v1/jobs/metrics", headers=api.viewer)).json()
    await hub.aclose()
    hourly = next(item for item in body if item["job"] == "syncXero")["hourly"]
    estimate = representative(bucket_of(250)).total_seconds()
    assert [(h["duration_p50_seconds"], h["duration_p95_seconds"]) for h in hourly] == [
        (None, None)
    ] * 23 + [(estimate, estimate)]


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


async def test_prometheus_exports_counters_and_histograms(api: Api) -> None:
    """Attempts are a counter; durations and queue waits are histograms (no percentile
    gauges) whose buckets place a 1.032 s attempt between 1 and 2.5 s, with its exact sum."""
    health = await api.hub.admin.queue_health()
    took = Histogram({bucket_of(1032): 1}, timedelta(milliseconds=1032))
    waited = Histogram({bucket_of(40): 1}, timedelta(milliseconds=40))
    totals = WindowStats(succeeded=1, durations=took, waits=waited)
    stats = JobStats("syncXero", {"24h": totals}, (), None, totals)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(health, [stats]))
    lines = set(generate_latest(registry).decode().splitlines())
    assert {
        "# TYPE hub_scheduler_job_runs_total counter",
        'hub_scheduler_job_runs_total{job="syncXero",outcome="succeeded"} 1.0',
        "# TYPE hub_scheduler_job_duration_seconds histogram",
        'hub_scheduler_job_duration_seconds_bucket{job="syncXero",le="1.0"} 0.0',
        'hub_scheduler_job_duration_seconds_bucket{job="syncXero",le="2.5"} 1.0',
        'hub_scheduler_job_duration_seconds_bucket{job="syncXero",le="+Inf"} 1.0',
        'hub_scheduler_job_duration_seconds_sum{job="syncXero"} 1.032',
        "# TYPE hub_scheduler_job_queue_wait_seconds histogram",
        'hub_scheduler_job_queue_wait_seconds_bucket{job="syncXero",le="0.025"} 0.0',
        'hub_scheduler_job_queue_wait_seconds_bucket{job="syncXero",le="0.05"} 1.0',
    } <= lines
    assert [line for line in lines if "job_duration_seconds{" in line] == []


async def test_queue_health_gives_completed_and_failed_counts(api: Api) -> None:
    """/queue adds succeeded and failed (retried or dead) attempts over every job."""
    await _run_twice(api)
    body = (await api.client.get("/api/v1/queue", headers=api.viewer)).json()
    assert (body["completed"], body["failed"]) == (1, 1)
