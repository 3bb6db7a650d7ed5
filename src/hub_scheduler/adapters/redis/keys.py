"""Every Redis key hub_scheduler uses, in one place.

All keys of one hub share a prefix wrapped in a hash tag (``{hub}``), so Redis Cluster puts
them in one slot and the Lua scripts stay valid there. The Lua scripts derive the same names
from the prefix (see ``lua/common.lua``); keep both in step.
"""

from __future__ import annotations

import re

import attrs

_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def _valid_prefix(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not _PREFIX.fullmatch(value):
        raise ValueError(
            f"invalid key prefix {value!r}: 1-64 letters, digits, '_', '.', ':' or '-'"
        )


@attrs.frozen
class Keys:
    """Key names for one hub (one queue) under `prefix`."""

    prefix: str = attrs.field(default="hub", validator=_valid_prefix)

    @property
    def base(self) -> str:
        """The hash-tagged prefix every key starts with, e.g. ``{hub}``."""
        return "{" + self.prefix + "}"

    def run(self, run_id: str) -> str:
        """Hash: one run's record (codec.py names its fields)."""
        return f"{self.base}:run:{run_id}"

    def ready(self, priority: int) -> str:
        """List: runs ready to start at one priority; LPUSH to enqueue, RPOP to claim."""
        return f"{self.base}:ready:{priority}"

    def parked(self, job: str) -> str:
        """List: ready runs of a paused job, in the same order as the ready lists."""
        return f"{self.base}:parked:{job}"

    @property
    def runs(self) -> str:
        """Sorted set: every run in history, scored by enqueue time (ms)."""
        return f"{self.base}:runs"

    def job_runs(self, job: str) -> str:
        """Sorted set: one job's runs, scored by enqueue time (ms)."""
        return f"{self.base}:runs:{job}"

    @property
    def jobs(self) -> str:
        """Set: every job name that has had a run (the cleaner walks it)."""
        return f"{self.base}:jobs"

    @property
    def delayed(self) -> str:
        """Sorted set: delayed runs and waiting retries, scored by due time (ms)."""
        return f"{self.base}:delayed"

    @property
    def active(self) -> str:
        """Sorted set: claimed runs, scored by lease deadline (ms)."""
        return f"{self.base}:active"

    @property
    def dead(self) -> str:
        """Sorted set: the dead-letter queue, scored by time of death (ms)."""
        return f"{self.base}:dead"

    @property
    def paused(self) -> str:
        """String: present while the whole queue is paused."""
        return f"{self.base}:paused"

    @property
    def paused_jobs(self) -> str:
        """Set: names of paused jobs."""
        return f"{self.base}:paused-jobs"

    def idempotency(self, key: str) -> str:
        """String: ``"<run id> <expiry ms>"`` for an idempotency key, while its window lasts."""
        return f"{self.base}:idem:{key}"

    @property
    def workers(self) -> str:
        """Sorted set: worker ids scored by their last heartbeat (ms)."""
        return f"{self.base}:workers"

    def worker(self, worker_id: str) -> str:
        """String: a worker's self-description (JSON), expiring when it stops reporting."""
        return f"{self.base}:worker:{worker_id}"

    def schedule(self, schedule_id: str) -> str:
        """String: a schedule's definition (versioned JSON, written by Python only)."""
        return f"{self.base}:schedule:{schedule_id}"

    def schedule_state(self, schedule_id: str) -> str:
        """Hash: a schedule's runtime state (next, runs, last, outcome, paused, declared, ver)."""
        return f"{self.base}:schedule-state:{schedule_id}"

    @property
    def schedule_ids(self) -> str:
        """Set: every schedule id."""
        return f"{self.base}:schedule-ids"

    @property
    def schedules_due(self) -> str:
        """Sorted set: schedule ids scored by their next fire instant (ms); over ones absent."""
        return f"{self.base}:schedules-due"

    def ledger(self, schedule_id: str) -> str:
        """Sorted set: one schedule's slot ledger, scored by slot (ms); members are JSON."""
        return f"{self.base}:ledger:{schedule_id}"

    @property
    def schedules_changed(self) -> str:
        """Pub/sub channel: published when schedules change, so schedulers re-plan at once."""
        return f"{self.base}:schedules-changed"

    def stats(self, job: str, kind: str, index: int) -> str:
        """Hash: one job's counters for one hour (``kind`` "h") or day ("d") since the epoch
        (written by ``flush_tally`` in lua/common.lua)."""
        return f"{self.base}:stats:{job}:{kind}:{index}"

    def stats_total(self, job: str) -> str:
        """Hash: one job's counters since the store began, and its last success (ms)."""
        return f"{self.base}:stats:{job}:total"

    @property
    def audit(self) -> str:
        """Sorted set: the audit trail (versioned JSON entries), scored by time (ms)."""
        return f"{self.base}:audit"

    def scheduler(self, scheduler_id: str) -> str:
        """String: a scheduler's self-description (JSON), expiring when it stops reporting."""
        return f"{self.base}:scheduler:{scheduler_id}"

    @property
    def schedulers(self) -> str:
        """Sorted set: scheduler ids scored by when their report expires (ms)."""
        return f"{self.base}:schedulers"

    @property
    def wake(self) -> str:
        """Pub/sub channel: published when runs become ready, so idle workers claim at once."""
        return f"{self.base}:wake"
