"""`Presence` on PostgreSQL: one row per worker or scheduler with the instant its report
expires (on the hub's clock); expired rows are dropped as others report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from hub_scheduler.adapters.postgres.codec import utc
from hub_scheduler.adapters.postgres.store import PostgresStore
from hub_scheduler.domain.ports import SchedulerInfo, WorkerInfo


@attrs.define
class PostgresPresence:
    """Live workers and schedulers of one hub."""

    store: PostgresStore

    async def worker_seen(self, info: WorkerInfo, ttl: timedelta) -> None:
        """See `Presence.worker_seen`."""
        await self.store.execute(
            "presence",
            self.store.q(
                "WITH up AS (INSERT INTO {s}.workers (id, host, pid, concurrency, active, "
                "seen_at, expires_at) VALUES (%(id)s, %(host)s, %(pid)s, %(concurrency)s, "
                "%(active)s, %(seen)s, %(expires)s) ON CONFLICT (id) DO UPDATE SET "
                "host = EXCLUDED.host, pid = EXCLUDED.pid, concurrency = EXCLUDED.concurrency, "
                "active = EXCLUDED.active, seen_at = EXCLUDED.seen_at, "
                "expires_at = EXCLUDED.expires_at) "
                "DELETE FROM {s}.workers WHERE expires_at < %(seen)s"
            ),
            {
                "id": info.id,
                "host": info.host,
                "pid": info.pid,
                "concurrency": info.concurrency,
                "active": info.active,
                "seen": info.seen_at,
                "expires": info.seen_at + ttl,
            },
        )

    async def worker_stopped(self, worker_id: str) -> None:
        """See `Presence.worker_stopped`."""
        await self.store.execute(
            "presence", self.store.q("DELETE FROM {s}.workers WHERE id = %s"), [worker_id]
        )

    async def workers(self, now: datetime) -> Sequence[WorkerInfo]:
        """See `Presence.workers`."""
        rows = await self.store.fetch(
            "presence",
            self.store.q(
                "SELECT id, host, pid, concurrency, active, seen_at FROM {s}.workers "
                "WHERE expires_at > %s ORDER BY id"
            ),
            [now],
        )
        return [
            WorkerInfo(
                id=row["id"],
                host=row["host"],
                pid=row["pid"],
                concurrency=row["concurrency"],
                active=row["active"],
                seen_at=utc(row["seen_at"]),
            )
            for row in rows
        ]

    async def scheduler_seen(self, info: SchedulerInfo, ttl: timedelta) -> None:
        """See `Presence.scheduler_seen`."""
        await self.store.execute(
            "presence",
            self.store.q(
                "WITH up AS (INSERT INTO {s}.schedulers (id, seen_at, expires_at, lateness_p50, "
                "lateness_p99) VALUES (%(id)s, %(seen)s, %(expires)s, %(p50)s, %(p99)s) "
                "ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at, "
                "expires_at = EXCLUDED.expires_at, lateness_p50 = EXCLUDED.lateness_p50, "
                "lateness_p99 = EXCLUDED.lateness_p99) "
                "DELETE FROM {s}.schedulers WHERE expires_at < %(seen)s"
            ),
            {
                "id": info.id,
                "seen": info.seen_at,
                "expires": info.seen_at + ttl,
                "p50": info.lateness_p50,
                "p99": info.lateness_p99,
            },
        )

    async def schedulers(self, now: datetime) -> Sequence[SchedulerInfo]:
        """See `Presence.schedulers`."""
        rows = await self.store.fetch(
            "presence",
            self.store.q(
                "SELECT id, seen_at, lateness_p50, lateness_p99 FROM {s}.schedulers "
                "WHERE expires_at > %s ORDER BY id"
            ),
            [now],
        )
        return [
            SchedulerInfo(
                id=row["id"],
                seen_at=utc(row["seen_at"]),
                lateness_p50=row["lateness_p50"],
                lateness_p99=row["lateness_p99"],
            )
            for row in rows
        ]
