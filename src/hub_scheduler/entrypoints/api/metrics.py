"""Prometheus exposition of a hub: queue, workers, schedulers and per-job series.

Each scrape reads the queue's health (`AdminService.queue_health`) and each job's statistics,
and builds its metric families afresh in a registry of its own: no gauge outlives a scrape,
so a series that stops existing (a lateness no scheduler reports any more) disappears instead
of repeating its last value.

Counts kept in the store since it began counting are Prometheus counters (attempts per job and
outcome); attempt durations and queue waits are Prometheus histograms, cumulative since the
store began counting, in the standard `PROMETHEUS_BUCKETS` derived from the store's fine
buckets (`hub_scheduler.domain.histogram`: a fine bucket counts below a bound when its
midpoint does; right at powers of ten, within 10 % of the bound elsewhere). Use
``histogram_quantile`` over their rates for percentiles. Every process reads the same store,
so every replica of the API exposes the same series.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import attrs
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from hub_scheduler.domain.admin import QueueHealth
from hub_scheduler.domain.histogram import Histogram
from hub_scheduler.domain.ports import JobStats
from hub_scheduler.hub import Hub

#: Prometheus text format (Litestar adds the charset itself).
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
OUTCOMES = ("succeeded", "failed", "dead")
#: The exposition's histogram bounds, in seconds (+Inf follows).
PROMETHEUS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0,
)  # fmt: skip


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    cumulative = histogram.cumulative(PROMETHEUS_BUCKETS)
    pairs = zip(PROMETHEUS_BUCKETS, cumulative, strict=True)
    buckets = [(str(bound), float(n)) for bound, n in pairs]
    return [*buckets, ("+Inf", float(histogram.count))]


def _worst(values: Sequence[timedelta | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known).total_seconds() if known else None


@attrs.frozen(eq=False)  # registered by identity: a registry keeps its collectors in a dict
class HubCollector:
    """One scrape's metric families, from the queue's health and each job's statistics."""

    health: QueueHealth
    jobs: Sequence[JobStats]

    def collect(self) -> Iterator[Metric]:
        """The families, in a stable order."""
        snapshot = self.health.snapshot
        depth = GaugeMetricFamily(
            "hub_scheduler_queue_depth", "Runs waiting, by priority", labels=["priority"]
        )
        for priority, count in snapshot.depth.items():
            depth.add_metric([priority.name.lower()], count)
        yield depth
        for name, text, value in (
            ("queue_delayed", "Runs waiting for their time", snapshot.delayed),
            ("queue_active", "Runs being worked on", snapshot.active),
            ("dead_letters", "Runs in the dead-letter queue", snapshot.dead),
            ("queue_paused", "1 while the whole queue is paused", int(snapshot.paused)),
            ("workers_live", "Workers seen recently", len(self.health.workers)),
        ):
            yield GaugeMetricFamily(f"hub_scheduler_{name}", text, value=value)
        yield from self._jobs()
        schedulers = self.health.schedulers
        lateness = GaugeMetricFamily(
            "hub_scheduler_scheduler_fire_lateness_seconds",
            "Fire lateness of on-time slots, worst over live schedulers",
            labels=["quantile"],
        )
        for quantile, worst in (
            ("0.5", _worst([s.lateness_p50 for s in schedulers])),
            ("0.99", _worst([s.lateness_p99 for s in schedulers])),
        ):
            if worst is not None:
                lateness.add_metric([quantile], worst)
        yield lateness
        yield GaugeMetricFamily(
            "hub_scheduler_schedulers_live", "Schedulers seen recently", value=len(schedulers)
        )
        yield from self._backend()

    def _backend(self) -> Iterator[Metric]:
        """The store's own health; a figure the backend does not know is left out."""
        vitals = self.health.vitals
        if vitals is None:
            return
        for name, text, value in (
            ("used_memory_bytes", "Memory the Redis server uses", vitals.used_memory),
            ("max_memory_bytes", "The Redis server's maxmemory (absent: no limit)",
             vitals.max_memory),
            ("memory_ratio", "Redis used memory over maxmemory", vitals.memory_ratio),
            ("connected_clients", "Clients connected to the Redis server",
             vitals.connected_clients),
            ("ops_per_second", "Commands per second the Redis server runs",
             vitals.ops_per_second),
            ("connections", "Connections to the PostgreSQL database", vitals.connections),
        ):  # fmt: skip
            if value is not None:
                yield GaugeMetricFamily(f"hub_scheduler_backend_{name}", text, value=value)
        if vitals.evicted_keys is not None:
            yield CounterMetricFamily(
                "hub_scheduler_backend_evicted_keys",
                "Keys the Redis server evicted since it started (each may be a lost run)",
                value=vitals.evicted_keys,
            )
        if vitals.eviction_policy is not None:
            policy = GaugeMetricFamily(
                "hub_scheduler_backend_eviction_safe",
                "1 when Redis's maxmemory-policy is noeviction, 0 when it may drop runs",
                labels=["policy"],
            )
            policy.add_metric([vitals.eviction_policy], int(not vitals.problems))
            yield policy
        if vitals.table_bytes:
            tables = GaugeMetricFamily(
                "hub_scheduler_backend_table_bytes",
                "Size of each hub table in PostgreSQL, indexes and TOAST included",
                labels=["table"],
            )
            for table, size in sorted(vitals.table_bytes.items()):
                tables.add_metric([table], size)
            yield tables

    def _jobs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "hub_scheduler_job_runs",
            "Finished attempts per job and outcome, since the store began counting",
            labels=["job", "outcome"],
        )
        last_success = GaugeMetricFamily(
            "hub_scheduler_job_last_success_timestamp_seconds",
            "When a job last succeeded (Unix time)",
            labels=["job"],
        )
        duration = HistogramMetricFamily(
            "hub_scheduler_job_duration_seconds",
            "How long attempts ran, since the store began counting",
            labels=["job"],
        )
        wait = HistogramMetricFamily(
            "hub_scheduler_job_queue_wait_seconds",
            "How long runs waited from due to started, since the store began counting",
            labels=["job"],
        )
        paused = GaugeMetricFamily(
            "hub_scheduler_job_paused", "1 while a job is paused", labels=["job"]
        )
        for stats in self.jobs:
            totals = stats.totals
            for outcome in OUTCOMES:
                runs.add_metric([stats.job, outcome], getattr(totals, outcome))
            if stats.last_success is not None:
                last_success.add_metric([stats.job], stats.last_success.timestamp())
            for family, histogram in ((duration, totals.durations), (wait, totals.waits)):
                family.add_metric(
                    [stats.job], _buckets(histogram), sum_value=histogram.total.total_seconds()
                )
            paused.add_metric([stats.job], int(stats.job in self.health.snapshot.paused_jobs))
        yield from (runs, last_success, duration, wait, paused)


async def exposition(hub: Hub) -> bytes:
    """The hub's series, then the HTTP metrics Litestar's middleware keeps in the default
    registry, as Prometheus text."""
    health = await hub.admin.queue_health()
    jobs = await hub.admin.all_job_stats(windows=("24h",))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(health, jobs))
    return generate_latest(registry) + generate_latest(REGISTRY)
