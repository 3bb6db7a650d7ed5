"""The Redis server's own health (`BackendVitals`): memory against ``maxmemory``, its eviction
policy, clients, commands per second and evicted keys.

From ``INFO memory``, ``INFO clients`` and ``INFO stats``, and ``CONFIG GET
maxmemory-policy``; a managed Redis that disables ``CONFIG`` still reports the policy in
``INFO memory``, and a figure neither tells stays None. On a Cluster the figures are those of
the master holding the hub's slot (all of a hub's keys live there).
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from hub_scheduler.adapters.redis.connection import RedisClient
from hub_scheduler.domain.ports import BackendVitals


def _int(info: dict[str, Any], name: str) -> int | None:
    value = info.get(name)
    return int(value) if isinstance(value, int | float | str) and str(value).isdigit() else None


async def read_vitals(client: RedisClient, slot_key: str) -> BackendVitals:
    """The vitals of the server that holds `slot_key`. Raises what redis-py raises for a
    server that does not answer; a refused command (``CONFIG`` disabled) leaves its figures
    None."""
    command: Any
    if isinstance(client, RedisCluster):
        await client.initialize()  # loads the slot map once; a no-op after that
        node = client.get_node_from_key(slot_key)
        command = client.execute_command if node is None else node.execute_command
    else:
        command = client.execute_command

    async def ask(*args: str) -> Any:
        try:
            return await command(*args)
        except ResponseError:  # disabled or renamed on a managed Redis
            return None

    info: dict[str, Any] = {}
    for section in ("memory", "clients", "stats"):
        part = await ask("INFO", section)
        if isinstance(part, dict):
            info.update(part)
    policy = None
    config = await ask("CONFIG", "GET", "maxmemory-policy")
    if isinstance(config, dict):
        policy = config.get("maxmemory-policy")
    elif isinstance(config, list) and len(config) == 2:
        policy = config[1]
    if isinstance(policy, bytes):
        policy = policy.decode()
    if policy is None and isinstance(info.get("maxmemory_policy"), str):
        policy = info["maxmemory_policy"]
    ops = info.get("instantaneous_ops_per_sec")
    return BackendVitals(
        kind="redis",
        used_memory=_int(info, "used_memory"),
        max_memory=_int(info, "maxmemory") or None,  # 0: no limit
        eviction_policy=cast("str | None", policy),
        connected_clients=_int(info, "connected_clients"),
        ops_per_second=float(ops) if isinstance(ops, int | float) else None,
        evicted_keys=_int(info, "evicted_keys"),
    )
