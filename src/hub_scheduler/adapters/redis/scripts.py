"""The Lua scripts, loaded once per client with the shared preamble prepended.

Calling convention: KEYS[1] is any key of the hub (it routes the script to the hub's Redis
Cluster slot), ARGV[1] the hash-tagged key prefix, the script's own arguments follow. Scripts
publish with ``redis.call(PUBLISH, ...)``: PUBLISH on one server, SPUBLISH (sharded, served by
the slot's node) on a Cluster.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from hub_scheduler.adapters.redis.codec import (
    ARCHIVE_CODES,
    ARCHIVE_RELATIVE,
    ARCHIVE_VERSION,
    ARCHIVED_FIELDS,
)
from hub_scheduler.adapters.redis.connection import (
    Durability,
    RedisClient,
    is_cluster,
    pipelined,
)
from hub_scheduler.adapters.redis.keys import lua_key_functions
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.histogram import EDGES_MS
from hub_scheduler.domain.model import MAX_ATTEMPTS_KEPT, Priority

_NAMES = (
    "enqueue",
    "step",
    "renew",
    "hand_back",
    "reap",
    "resume_job",
    "resume_queue",
    "cancel",
    "cancel_requests",
    "settle_cancelled",
    "set_limits",
    "dead_retry",
    "dead_delete",
    "attempt_trace",
    "clean",
    "clean_states",
    "layout_begin",
    "layout_move",
    "layout_finish",
    "snapshot",
    "fire",
    "upsert_schedule",
    "schedule_admin",
    "claim_due",
    "load_schedules",
    "compare_schedules",
    "page_schedules",
    "latest_runs",
    "load_runs",
    "history_page",
    "read_stats",
    "workflow_create",
    "workflow_save",
)


#: Scripts that change nothing: no replica needs to confirm them.
READ_ONLY = frozenset(
    {"snapshot", "cancel_requests", "load_schedules", "compare_schedules", "latest_runs",
     "load_runs", "history_page", "read_stats"}
)  # fmt: skip


def _source(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text()


def preamble(*, sharded: bool = False) -> str:
    """The Lua prepended to every script: the prefix ``P`` (ARGV[1]), the publish command
    (SPUBLISH when `sharded`), the key names built on it (generated from keys.py), the
    priorities (from `Priority`), the most attempts a run keeps (`MAX_ATTEMPTS_KEPT`), the
    histogram's bucket edges (`EDGES_MS`) and the archive's format (codec.py), then
    ``lua/common.lua``. The tables are built when a script first needs them
    (``duration_edges()``, ``archive_format()``): each call runs the whole preamble, and a
    script that needs neither skips their cost."""
    priorities = ", ".join(f"'{int(p)}'" for p in sorted(Priority))
    archived = ", ".join(f"'{name}'" for name in ARCHIVED_FIELDS)
    relative = ", ".join(f"{name} = true" for name in sorted(ARCHIVE_RELATIVE))
    codes = ", ".join(
        name + " = {" + ", ".join(f"'{v}'" for v in values) + "}"
        for name, values in ARCHIVE_CODES.items()
    )
    # Value -> its code, as the text the record holds ('1' for the first).
    code_of = ", ".join(
        name + " = {" + ", ".join(f"['{v}'] = '{i}'" for i, v in enumerate(values, 1)) + "}"
        for name, values in ARCHIVE_CODES.items()
    )
    # The fields an archived record stores in place of their name (or drops: 'due'), and
    # 'err', which end_run writes itself.
    own = ", ".join(f"{name} = true" for name in ("v", "pl", "due", "err", *ARCHIVED_FIELDS))
    return (
        "local P = ARGV[1]\n"
        f"local PUBLISH = '{'SPUBLISH' if sharded else 'PUBLISH'}'\n"
        f"{lua_key_functions()}"
        f"local PRIORITIES = {{{priorities}}}\n"
        f"local MAX_ATTEMPTS = {MAX_ATTEMPTS_KEPT}\n"
        f"local EDGES\n"
        f"local function duration_edges()\n"
        f"  if not EDGES then EDGES = {{{', '.join(map(str, EDGES_MS))}}} end\n"
        f"  return EDGES\n"
        f"end\n"
        f"local ARCHIVE_VERSION = {ARCHIVE_VERSION}\n"
        f"local ARCHIVE\n"
        f"local function archive_format()\n"
        f"  if not ARCHIVE then ARCHIVE = {{fields = {{{archived}}}, relative = {{{relative}}},\n"
        f"    codes = {{{codes}}}, code_of = {{{code_of}}}, own = {{{own}}}}} end\n"
        f"  return ARCHIVE\n"
        f"end\n"
        f"{_source('common')}\n"
    )


class Scripts:
    """Registered scripts (EVALSHA, loading the script again after a Redis restart).

    On one server or a Sentinel group's master they go down one pipelined connection
    (`pipelined.Pipelined`); on a Cluster, on fakeredis, and with replicas to wait for, through
    redis-py's client.
    """

    def __init__(self, client: RedisClient, durability: Durability | None = None) -> None:
        shared = preamble(sharded=is_cluster(client))
        self._client = client
        self._durability = durability or Durability()
        # Not with replicas to wait for: Redis reads nothing more from a client blocked in
        # WAIT, so one shared connection would queue every script behind each WAIT.
        self._pipelined = None if self._durability.replicas else pipelined(client)
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(shared + _source(name)) for name in _NAMES
        }

    async def __call__(self, name: str, key: str, *args: Any) -> Any:
        """Run script `name`; `key` routes it (any key of the hub's slot). With replicas to
        wait for, the script and a ``WAIT`` go down one connection in one round trip."""
        script = self._scripts[name]
        if self._pipelined is not None:
            return await self._call_pipelined(script, key, args)
        wait = self._durability
        if not wait.replicas or name in READ_ONLY or is_cluster(self._client):
            return await script(keys=[key], args=list(args))
        async with self._client.pipeline(transaction=False) as pipe:
            # redis-py queues the EVALSHA on a pipeline (its typing names clients only).
            await script(keys=[key], args=list(args), client=pipe)  # type: ignore[arg-type]
            pipe.execute_command("WAIT", wait.replicas, wait.timeout_ms)
            reply, confirmed = await pipe.execute()
        if int(confirmed) < wait.replicas:
            raise BackendUnavailableError(
                name, f"{confirmed} of {wait.replicas} replicas confirmed it in time"
            )
        return reply

    async def _call_pipelined(self, script: AsyncScript, key: str, args: tuple[Any, ...]) -> Any:
        connection = self._pipelined
        assert connection is not None
        try:
            return await connection.call("EVALSHA", script.sha, 1, key, *args)
        except NoScriptError:  # the server restarted, or failed over, and forgot the scripts
            await connection.call("SCRIPT", "LOAD", script.script)
            return await connection.call("EVALSHA", script.sha, 1, key, *args)
