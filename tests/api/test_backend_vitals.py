"""The backend's own health on ``/queue`` and ``/metrics``: Redis memory, clients, ops/s,
evictions and eviction policy; an evicting Redis makes the queue degraded."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from hub_scheduler import Hub
from hub_scheduler.domain.ports import Backend, SchedulerInfo, WorkerInfo
from tests.api.conftest import Api, build_app, client_for
from tests.conftest import EVICTING, ReportingVitals


async def test_queue_shows_the_stores_vitals(api: Api) -> None:
    """/queue has the store's vitals: none on memory://, the server's on a real Redis (which
    the suite runs with noeviction, so no problem and the status stays as it was)."""
    body = (await api.client.get("/api/v1/queue", headers=api.viewer)).json()
    backend = body["backend"]
    if api.hub.url.startswith("memory://"):
        assert backend is None
        return
    assert backend["kind"] == "redis"
    assert backend["used_memory_bytes"] > 0
    assert backend["connected_clients"] >= 1
    assert (backend["eviction_policy"], backend["problems"]) == ("noeviction", [])


async def test_an_evicting_redis_degrades_the_queue_and_shows_in_metrics(api: Api) -> None:
    """A store whose maxmemory-policy evicts: /queue is degraded and says why; /metrics has
    its memory, clients, ops/s, evicted keys and eviction_safe 0 for that policy."""
    now = api.hub.clock.now()
    await api.hub.presence.worker_seen(WorkerInfo("w1", "host", 1, 1, 0, now), timedelta(minutes=5))
    await api.hub.presence.scheduler_seen(SchedulerInfo("s1", now), timedelta(minutes=5))
    plain = (await api.client.get("/api/v1/queue", headers=api.viewer)).json()
    backend = cast("Backend", ReportingVitals(api.hub.backend, EVICTING))
    hub = Hub(backend, registry=api.hub.registry)
    async with client_for(build_app(hub)) as client:
        body = (await client.get("/api/v1/queue", headers=api.viewer)).json()
        text = (await client.get("/api/v1/metrics", headers=api.viewer)).text
    assert (plain["status"], body["status"]) == ("ok", "degraded")
    assert body["backend"]["memory_ratio"] == 0.95
    assert body["backend"]["problems"] == [
        "Redis maxmemory-policy is allkeys-lru: under memory pressure it deletes keys, "
        "queued runs included; set it to noeviction"
    ]
    for line in (
        "hub_scheduler_backend_used_memory_bytes 950.0",
        "hub_scheduler_backend_max_memory_bytes 1000.0",
        "hub_scheduler_backend_memory_ratio 0.95",
        "hub_scheduler_backend_connected_clients 3.0",
        "hub_scheduler_backend_ops_per_second 12.5",
        "hub_scheduler_backend_evicted_keys_total 7.0",
        'hub_scheduler_backend_eviction_safe{policy="allkeys-lru"} 0.0',
    ):
        assert line in text.splitlines()
