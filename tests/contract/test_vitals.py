"""`HasVitals` on every backend: what each store tells of its own health."""

from __future__ import annotations

from hub_scheduler.adapters.sharded import ShardedBackend
from hub_scheduler.domain.model import Priority
from hub_scheduler.domain.ports import BackendVitals, EnqueueRequest, HasVitals
from tests.contract.conftest import Subject


async def _vitals(backend: Subject) -> BackendVitals | None:
    assert isinstance(backend.backend, HasVitals)
    return await backend.backend.vitals()


async def test_every_backend_reports_vitals_or_none(backend: Subject) -> None:
    """memory:// reports nothing; a Redis its memory, clients, ops/s, evictions and policy;
    PostgreSQL its connections and the size of every hub table."""
    vitals = await _vitals(backend)
    inner = backend.backend
    if isinstance(inner, ShardedBackend):
        inner = inner.shards[0]
    name = inner.url.partition("://")[0]
    if name == "memory":
        assert vitals is None
        return
    assert vitals is not None
    if name.startswith("postgresql"):
        assert vitals.kind == "postgresql"
        assert vitals.connections is not None
        assert vitals.connections >= 1
        assert {"runs", "schedules", "audit"} <= set(vitals.table_bytes)
        assert (vitals.used_memory, vitals.eviction_policy) == (None, None)
    else:
        assert vitals.kind == "redis"
        assert vitals.used_memory is not None
        assert vitals.used_memory > 0
        assert vitals.connected_clients is not None
        assert vitals.connected_clients >= 1
        assert vitals.ops_per_second is not None
        assert vitals.evicted_keys is not None
        assert vitals.eviction_policy is not None
        assert vitals.table_bytes == {}


async def test_postgres_table_sizes_grow_with_runs(backend: Subject) -> None:
    """On PostgreSQL the runs table's size counts what the hub stored (it grows with runs)."""
    vitals = await _vitals(backend)
    if vitals is None or vitals.kind != "postgresql":
        return
    before = vitals.table_bytes["runs"]
    await backend.queue.enqueue(
        [EnqueueRequest(job="grow", payload={"i": "x" * 200}, priority=Priority.NORMAL)] * 200
    )
    after = await _vitals(backend)
    assert after is not None
    assert after.table_bytes["runs"] > before
