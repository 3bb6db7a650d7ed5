"""The Lua scripts, loaded once per client with the shared preamble prepended."""

from __future__ import annotations

from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from hub_scheduler.domain.model import Priority

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


def _preamble() -> str:
    priorities = ", ".join(f"'{int(p)}'" for p in sorted(Priority))
    return f"local PRIORITIES = {{{priorities}}}\n{_source('common')}\n"


class Scripts:
    """Registered scripts (EVALSHA, falling back to EVAL after a Redis restart)."""

    def __init__(self, client: aioredis.Redis) -> None:
        preamble = _preamble()
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(preamble + _source(name)) for name in _NAMES
        }

    async def __call__(self, name: str, key: str, *args: Any) -> Any:
        """Run script `name`; `key` routes it (any key of the hub's slot)."""
        return await self._scripts[name](keys=[key], args=list(args))
