"""Prometheus exposition of a hub: queue, workers, schedulers and per-job series.

Each scrape reads the queue's health (`AdminService.queue_health`) and each job's statistics,
and builds its metric families afresh in a registry of its own: no gauge outlives a scrape,
so a series that stops existing (a lateness no scheduler reports any more) disappears instead
of repeating its last value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import attrs
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from hub_scheduler.domain.admin import QueueHealth
from hub_scheduler.domain.ports import JobStats
from hub_scheduler.hub import Hub

#: Prometheus text format (Litestar adds the charset itself).
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
OUTCOMES = ("succeeded", "failed", "dead")


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

    def _jobs(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "hub_scheduler_job_runs_total",
            "Finished attempts per job and outcome, since the store began counting",
            labels=["job", "outcome"],
        )
        last_success = GaugeMetricFamily(
            "hub_scheduler_job_last_success_timestamp_seconds",
            "When a job last succeeded (Unix time)",
            labels=["job"],
        )
        duration = GaugeMetricFamily(
            "hub_scheduler_job_duration_seconds",
            "Attempt duration percentiles over the last 24 h (bucket upper bounds)",
            labels=["job", "quantile"],
        )
        paused = GaugeMetricFamily(
            "hub_scheduler_job_paused", "1 while a job is paused", labels=["job"]
        )
        for stats in self.jobs:
            for outcome in OUTCOMES:
                runs.add_metric([stats.job, outcome], getattr(stats.totals, outcome))
            if stats.last_success is not None:
                last_success.add_metric([stats.job], stats.last_success.timestamp())
            day = stats.windows["24h"]
            for quantile, value in (("0.5", day.p50), ("0.95", day.p95)):
                if value is not None:
                    duration.add_metric([stats.job, quantile], value.total_seconds())
            paused.add_metric([stats.job], int(stats.job in self.health.snapshot.paused_jobs))
        yield from (runs, last_success, duration, paused)


async def exposition(hub: Hub) -> bytes:
    """The hub's series, then the HTTP metrics Litestar's middleware keeps in the default
    registry, as Prometheus text."""
    health = await hub.admin.queue_health()
    now = hub.clock.now()
    jobs = [await hub.stats.job(job.definition.name, now, windows=("24h",)) for job in hub.registry]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(health, jobs))
    return generate_latest(registry) + generate_latest(REGISTRY)
