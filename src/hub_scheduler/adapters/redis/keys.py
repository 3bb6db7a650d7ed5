"""Every Redis key hub_scheduler uses, defined once.

All keys of one hub share a prefix wrapped in a hash tag (``{hub}``), so Redis Cluster puts
them in one slot and the Lua scripts stay valid there. `LAYOUT` names each key and gives the
suffix that follows the tagged prefix, with a ``{field}`` for each part the name takes. Both
sides are built from it: the `Keys` methods for Python, and `lua_key_functions` for the Lua
preamble (scripts.py prepends it to every script), where a key is ``K_<NAME>`` — a local
string when it takes no parts (``K_ACTIVE``), else a function of its parts
(``K_RUN(run_id)``). No Lua script spells a key name itself.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

LAYOUT: Final[Mapping[str, str]] = MappingProxyType(
    {
        "run": ":run:{run_id}",
        "archive": ":done:{bucket}",
        "ready": ":ready:{priority}",
        "parked": ":parked:{job}",
        "history": ":history",
        "job_history": ":history:{job}",
        "state_history": ":history-state:{state}",
        "layout": ":layout",
        "layout_lock": ":layout-lock",
        "moving_history": ":moving:history",
        "moving_job_history": ":moving:history:{job}",
        "moving_state_history": ":moving:history-state:{state}",
        "runs": ":runs",
        "job_runs": ":runs:{job}",
        "jobs": ":jobs",
        "delayed": ":delayed",
        "active": ":active",
        "dead": ":dead",
        "paused": ":paused",
        "paused_jobs": ":paused-jobs",
        "limits": ":limits",
        "running": ":running:{job}",
        "held": ":held:{job}",
        "rates": ":rates",
        "rate": ":rate:{job}:{key}",
        "idempotency": ":idem:{key}",
        "workers": ":workers",
        "worker": ":worker:{worker_id}",
        "schedule": ":schedule:{schedule_id}",
        "schedule_state": ":schedule-state:{schedule_id}",
        "schedule_ids": ":schedule-ids",
        "schedules_due": ":schedules-due",
        "schedule_order": ":schedule-order",
        "schedule_jobs": ":schedule-jobs",
        "ledger": ":ledger:{schedule_id}",
        "schedules_changed": ":schedules-changed",
        "stats": ":stats:{job}:{kind}:{index}",
        "stats_total": ":stats:{job}:total",
        "stats_queue": ":stats-queue",
        "audit": ":audit",
        "scheduler": ":scheduler:{scheduler_id}",
        "schedulers": ":schedulers",
        "shared": ":shared:{key}",
        "wake": ":wake",
        "workflow": ":workflow:{workflow_id}",
        "workflows": ":workflows",
        "workflow_events": ":workflow-events",
    }
)
"""Key name -> suffix after the tagged prefix; ``{field}`` marks a part the key takes."""

_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
# Literal text in a suffix: plain enough to sit in a single-quoted Lua string as it is.
_LITERAL = re.compile(r"[A-Za-z0-9_.:\-]*")
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")


def _pieces(template: str) -> list[tuple[str, str | None]]:
    """A suffix as (literal text, field name or None) pairs, checked to translate to Lua."""
    pieces: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        if not _LITERAL.fullmatch(literal) or spec or conversion:
            raise ValueError(f"key suffix {template!r}: only plain text and {{field}} parts")
        if field is not None and not _FIELD.fullmatch(field):
            raise ValueError(f"key suffix {template!r}: bad field name {field!r}")
        pieces.append((literal, field))
    return pieces


_PIECES: Final = {name: _pieces(template) for name, template in LAYOUT.items()}


def key_fields(name: str) -> tuple[str, ...]:
    """The parts key `name` takes, in order (empty for a key that takes none)."""
    return tuple(field for _, field in _PIECES[name] if field is not None)


def lua_key_name(name: str) -> str:
    """The Lua name of key `name` in the script preamble: ``K_`` and the name in capitals."""
    return "K_" + name.upper()


def lua_key_functions() -> str:
    """Lua defining every key of `LAYOUT` from the tagged prefix ``P`` (defined before it).

    A key without parts becomes a local string (``local K_ACTIVE = P .. ':active'``), one with
    parts a local function of them (``local function K_RUN(run_id) ... end``).
    """
    lines = ["-- Key names, generated from LAYOUT in hub_scheduler/adapters/redis/keys.py."]
    for name in LAYOUT:
        terms = ["P"]
        for literal, field in _PIECES[name]:
            if literal:
                terms.append(f"'{literal}'")
            if field is not None:
                terms.append(field)
        value = " .. ".join(terms)
        fields = key_fields(name)
        if fields:
            lines.append(
                f"local function {lua_key_name(name)}({', '.join(fields)}) return {value} end"
            )
        else:
            lines.append(f"local {lua_key_name(name)} = {value}")
    return "\n".join(lines) + "\n"


def archive_bucket(run_id: str) -> str:
    """Which archive holds finished run `run_id` (``archive_key`` in lua/common.lua agrees:
    its last two bytes, the same as characters for run ids, which are hex)."""
    return run_id[-2:]


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

    def _key(self, name: str, **parts: object) -> str:
        """Key `name` of `LAYOUT`, its fields filled from `parts`."""
        return self.base + LAYOUT[name].format(**parts)

    def run(self, run_id: str) -> str:
        """Hash: one run's record (codec.py names its fields)."""
        return self._key("run", run_id=run_id)

    def archive(self, bucket: str) -> str:
        """Hash: finished runs, one field (the run id) each, in the archive `bucket`
        (`archive_bucket` of their id; codec.py, "Archived runs")."""
        return self._key("archive", bucket=bucket)

    def ready(self, priority: int) -> str:
        """List: runs ready to start at one priority; LPUSH to enqueue, RPOP to claim."""
        return self._key("ready", priority=priority)

    def parked(self, job: str) -> str:
        """List: ready runs of a paused job, in the same order as the ready lists."""
        return self._key("parked", job=job)

    @property
    def history(self) -> str:
        """Stream: every run in history, one entry (field ``r``: the run id) per run, its id
        ``<enqueue ms>-<seq>``: ~34 bytes a run where a sorted set took ~130."""
        return self._key("history")

    def job_history(self, job: str) -> str:
        """Stream: one job's runs, each under the same entry id as in `history`."""
        return self._key("job_history", job=job)

    def state_history(self, state: str) -> str:
        """Stream: the runs that ended ``dead`` or ``cancelled`` (one stream each), by the
        time they did, so a listing by those states reads an index instead of scanning."""
        return self._key("state_history", state=state)

    @property
    def layout(self) -> str:
        """String: the version of this hub's data layout in Redis (`store.LAYOUT_VERSION`)."""
        return self._key("layout")

    @property
    def layout_lock(self) -> str:
        """String: the process moving the keys to a new layout, while it does (with a TTL)."""
        return self._key("layout_lock")

    @property
    def moving_history(self) -> str:
        """Stream: `history` being rebuilt from an older layout (lua/layout_begin.lua)."""
        return self._key("moving_history")

    def moving_job_history(self, job: str) -> str:
        """Stream: `job_history` being rebuilt from an older layout."""
        return self._key("moving_job_history", job=job)

    def moving_state_history(self, state: str) -> str:
        """Stream: `state_history` being rebuilt from an older layout."""
        return self._key("moving_state_history", state=state)

    @property
    def runs(self) -> str:
        """Sorted set of layout 1 (every run by enqueue ms): read only by the migration."""
        return self._key("runs")

    def job_runs(self, job: str) -> str:
        """Sorted set of layout 1 (one job's runs): read only by the migration."""
        return self._key("job_runs", job=job)

    @property
    def jobs(self) -> str:
        """Set: every job name that has had a run (the cleaner walks it)."""
        return self._key("jobs")

    @property
    def delayed(self) -> str:
        """Sorted set: delayed runs and waiting retries, scored by due time (ms)."""
        return self._key("delayed")

    @property
    def active(self) -> str:
        """Sorted set: claimed runs, scored by lease deadline (ms)."""
        return self._key("active")

    @property
    def dead(self) -> str:
        """Sorted set: the dead-letter queue, scored by time of death (ms)."""
        return self._key("dead")

    @property
    def paused(self) -> str:
        """String: present while the whole queue is paused."""
        return self._key("paused")

    @property
    def paused_jobs(self) -> str:
        """Set: names of paused jobs."""
        return self._key("paused_jobs")

    @property
    def limits(self) -> str:
        """Hash: job name -> the most runs of it active at once (`JobDefinition.max_running`)."""
        return self._key("limits")

    def running(self, job: str) -> str:
        """Set: ids of the active runs of a job with a limit (what counts against it)."""
        return self._key("running", job=job)

    def held(self, job: str) -> str:
        """List: runs of a job at its limit, waiting for a slot; the oldest at the right."""
        return self._key("held", job=job)

    @property
    def rates(self) -> str:
        """Hash: job name -> its rate limit, ``"<count> <window ms> [payload field]"``."""
        return self._key("rates")

    def rate(self, job: str, key: str) -> str:
        """Sorted set: the starts within the last window of one key of a rate-limited job,
        scored by time (ms); gone a window after the last."""
        return self._key("rate", job=job, key=key)

    def idempotency(self, key: str) -> str:
        """String: ``"<run id> <expiry ms>"`` for an idempotency key, while its window lasts."""
        return self._key("idempotency", key=key)

    @property
    def workers(self) -> str:
        """Sorted set: worker ids scored by their last heartbeat (ms)."""
        return self._key("workers")

    def worker(self, worker_id: str) -> str:
        """String: a worker's self-description (JSON), expiring when it stops reporting."""
        return self._key("worker", worker_id=worker_id)

    def schedule(self, schedule_id: str) -> str:
        """String: a schedule's definition (versioned JSON, written by Python only)."""
        return self._key("schedule", schedule_id=schedule_id)

    def schedule_state(self, schedule_id: str) -> str:
        """Hash: a schedule's runtime state (next, runs, last, outcome, paused, declared, ver)."""
        return self._key("schedule_state", schedule_id=schedule_id)

    @property
    def schedule_ids(self) -> str:
        """Set: every schedule id."""
        return self._key("schedule_ids")

    @property
    def schedules_due(self) -> str:
        """Sorted set: schedule ids scored by their next fire instant (ms); over ones absent."""
        return self._key("schedules_due")

    @property
    def schedule_order(self) -> str:
        """Sorted set: every schedule id at score 0, so ids page in order (ZRANGEBYLEX);
        rebuilt from `schedule_ids` by ``page_schedules.lua`` when their sizes differ."""
        return self._key("schedule_order")

    @property
    def schedule_jobs(self) -> str:
        """Sorted set: ``"<job> <schedule id>"`` for every schedule at score 0, so one job's
        schedules are one ZRANGEBYLEX (job names hold no space); rebuilt like
        `schedule_order`."""
        return self._key("schedule_jobs")

    def ledger(self, schedule_id: str) -> str:
        """Sorted set: one schedule's slot ledger, scored by slot (ms); members are JSON."""
        return self._key("ledger", schedule_id=schedule_id)

    @property
    def schedules_changed(self) -> str:
        """Pub/sub channel: published when schedules change, so schedulers re-plan at once."""
        return self._key("schedules_changed")

    def stats(self, job: str, kind: str, index: int) -> str:
        """Hash: one job's counters for one hour (``kind`` "h") or day ("d") since the epoch
        (written by ``flush_tally`` in lua/common.lua)."""
        return self._key("stats", job=job, kind=kind, index=index)

    def stats_total(self, job: str) -> str:
        """Hash: one job's counters since the store began, and its last success (ms)."""
        return self._key("stats_total", job=job)

    @property
    def stats_queue(self) -> str:
        """Hash: outcome counters of every job together, since the store began counting."""
        return self._key("stats_queue")

    @property
    def audit(self) -> str:
        """Sorted set: the audit trail (versioned JSON entries), scored by time (ms)."""
        return self._key("audit")

    def scheduler(self, scheduler_id: str) -> str:
        """String: a scheduler's self-description (JSON), expiring when it stops reporting."""
        return self._key("scheduler", scheduler_id=scheduler_id)

    @property
    def schedulers(self) -> str:
        """Sorted set: scheduler ids scored by when their report expires (ms)."""
        return self._key("schedulers")

    def shared(self, key: str) -> str:
        """String: one value of the shared store (the admin API's rate-limit counters)."""
        return self._key("shared", key=key)

    @property
    def wake(self) -> str:
        """Pub/sub channel: published when runs become ready, so idle workers claim at once."""
        return self._key("wake")

    def workflow(self, workflow_id: str) -> str:
        """Hash: a workflow's document (``doc``, versioned JSON) and its version (``ver``)."""
        return self._key("workflow", workflow_id=workflow_id)

    @property
    def workflows(self) -> str:
        """Sorted set: workflow ids scored by creation (ms)."""
        return self._key("workflows")

    @property
    def workflow_events(self) -> str:
        """Sorted set: events for workflows not yet applied (a step's run id, or a new
        workflow's id), scored by when they happened (ms)."""
        return self._key("workflow_events")
