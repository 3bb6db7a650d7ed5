"""The Lua scripts, loaded once per client with the shared preamble prepended.

Calling convention: KEYS[1] is any key of the hub (it routes the script to the hub's Redis
Cluster slot), ARGV[1] the hash-tagged key prefix, the script's own arguments follow.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from hub_scheduler.adapters.redis.keys import lua_key_functions
from hub_scheduler.domain.histogram import EDGES_MS
from hub_scheduler.domain.model import MAX_ATTEMPTS_KEPT, Priority

_NAMES = (
    "enqueue",
    "step",
    "renew",
    "hand_back",
    "reap",
    "resume_job",
    "cancel",
    "dead_retry",
    "dead_delete",
    "clean",
    "snapshot",
    "fire",
    "upsert_schedule",
    "schedule_admin",
)


def _source(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text()


def preamble() -> str:
    """The Lua prepended to every script: the prefix ``P`` (ARGV[1]), the key names built on
    it (generated from keys.py), the priorities (from `Priority`), the most attempts a run
    keeps (`MAX_ATTEMPTS_KEPT`), the histogram's bucket edges (`EDGES_MS`), then
    ``lua/common.lua``."""
    priorities = ", ".join(f"'{int(p)}'" for p in sorted(Priority))
    return (
        "local P = ARGV[1]\n"
        f"{lua_key_functions()}"
        f"local PRIORITIES = {{{priorities}}}\n"
        f"local MAX_ATTEMPTS = {MAX_ATTEMPTS_KEPT}\n"
        f"local DURATION_EDGES = {{{', '.join(map(str, EDGES_MS))}}}\n"
        f"{_source('common')}\n"
    )


class Scripts:
    """Registered scripts (EVALSHA, falling back to EVAL after a Redis restart)."""

    def __init__(self, client: aioredis.Redis) -> None:
        shared = preamble()
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(shared + _source(name)) for name in _NAMES
        }

    async def __call__(self, name: str, key: str, *args: Any) -> Any:
        """Run script `name`; `key` routes it (any key of the hub's slot)."""
        return await self._scripts[name](keys=[key], args=list(args))
