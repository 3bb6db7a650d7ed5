"""The Redis backend: every port on one redis-py client, opened from a URL.

``redis://`` and ``rediss://`` talk to a server, ``redis+cluster://`` to a Redis Cluster,
``redis+sentinel://`` to the master a Sentinel group names (see `connection`); ``memory://``
runs the very same code (Lua included) on fakeredis, private to the process.
`open_redis_backend` is what `hub_scheduler.adapters.backends.open_backend` calls for these
schemes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import attrs
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.audit import RedisAuditLog
from hub_scheduler.adapters.redis.connection import (
    Durability,
    RedisClient,
    close,
    is_memory,
    listen,
    open_redis,
    split_durability,
)
from hub_scheduler.adapters.redis.keys import Keys
from hub_scheduler.adapters.redis.presence import RedisPresence
from hub_scheduler.adapters.redis.results import RedisResults
from hub_scheduler.adapters.redis.schedules import RedisScheduleStore
from hub_scheduler.adapters.redis.stats import RedisStats
from hub_scheduler.adapters.redis.store import (
    RedisDeadLetters,
    RedisJobQueue,
    RedisRunHistory,
    RedisStore,
)
from hub_scheduler.adapters.redis.vitals import read_vitals
from hub_scheduler.adapters.redis.workflows import RedisWorkflows
from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.ports import BackendConfig, BackendVitals
from hub_scheduler.domain.urls import redacted

if TYPE_CHECKING:
    import fakeredis


@attrs.define
class RedisSignals:
    """`Signals` on Redis pub/sub (the scripts publish as they change state)."""

    store: RedisStore = attrs.field(repr=False)

    def wakeups(self) -> AsyncIterator[bool]:
        """See `Signals.wakeups`."""
        return listen(self.store.client, self.store.keys.wake)

    def schedule_changes(self) -> AsyncIterator[bool]:
        """See `Signals.schedule_changes`."""
        return listen(self.store.client, self.store.keys.schedules_changed)


@attrs.define
class RedisSharedStore:
    """`SharedStore` on Redis strings under the hub's prefix."""

    store: RedisStore = attrs.field(repr=False)

    def _key(self, key: str) -> str:
        return self.store.keys.shared(key)

    async def get(self, key: str) -> bytes | None:
        """See `SharedStore.get`."""
        try:
            value = await self.store.client.get(self._key(key))
        except RedisError as exc:
            raise BackendUnavailableError("shared get", type(exc).__name__) from exc
        return None if value is None else cast("bytes", value)

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        """See `SharedStore.set`."""
        px = None if ttl is None else max(1, ttl // timedelta(milliseconds=1))
        try:
            await self.store.client.set(self._key(key), value, px=px)
        except RedisError as exc:
            raise BackendUnavailableError("shared set", type(exc).__name__) from exc

    async def delete(self, key: str) -> None:
        """See `SharedStore.delete`."""
        try:
            await self.store.client.delete(self._key(key))
        except RedisError as exc:
            raise BackendUnavailableError("shared delete", type(exc).__name__) from exc

    async def ttl(self, key: str) -> timedelta | None:
        """See `SharedStore.ttl`."""
        try:
            left = int(await self.store.client.pttl(self._key(key)))
        except RedisError as exc:
            raise BackendUnavailableError("shared ttl", type(exc).__name__) from exc
        return timedelta(milliseconds=left) if left >= 0 else None

    async def clear(self) -> None:
        """See `SharedStore.clear`."""
        try:
            doomed = [k async for k in self.store.client.scan_iter(match=self._key("*"))]
            if doomed:
                await self.store.client.delete(*doomed)
        except RedisError as exc:
            raise BackendUnavailableError("shared clear", type(exc).__name__) from exc

    async def swap(
        self, key: str, expected: bytes | None, value: bytes, ttl: timedelta | None = None
    ) -> bool:
        """See `SharedStore.swap` (one Lua call: GET, compare, SET)."""
        px = "" if ttl is None else str(max(1, ttl // timedelta(milliseconds=1)))
        args = ["0" if expected is None else "1", expected or b"", value, px]
        try:
            swapped = await self.store.client.eval(_SWAP, 1, self._key(key), *args)
        except RedisError as exc:
            raise BackendUnavailableError("shared swap", type(exc).__name__) from exc
        return bool(int(swapped))


#: KEYS[1] the value; ARGV: 1 if a value is expected (else 0), the expected value, the new
#: value, its expiry in ms ('' for none).
_SWAP = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
"""


@attrs.define(eq=False)
class RedisBackend:
    """Every port of one hub on one Redis (or fakeredis) client. See `Backend`."""

    url: str
    config: BackendConfig
    store: RedisStore = attrs.field(repr=False)
    queue: RedisJobQueue = attrs.field(init=False, repr=False)
    dead_letters: RedisDeadLetters = attrs.field(init=False, repr=False)
    history: RedisRunHistory = attrs.field(init=False, repr=False)
    schedules: RedisScheduleStore = attrs.field(init=False, repr=False)
    stats: RedisStats = attrs.field(init=False, repr=False)
    audit: RedisAuditLog = attrs.field(init=False, repr=False)
    presence: RedisPresence = attrs.field(init=False, repr=False)
    results: RedisResults = attrs.field(init=False, repr=False)
    signals: RedisSignals = attrs.field(init=False, repr=False)
    shared: RedisSharedStore = attrs.field(init=False, repr=False)
    workflows: RedisWorkflows = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.queue = RedisJobQueue(self.store)
        self.dead_letters = RedisDeadLetters(self.store)
        self.history = RedisRunHistory(self.store)
        self.schedules = RedisScheduleStore(self.store)
        self.stats = RedisStats(self.store)
        self.audit = RedisAuditLog(self.store)
        self.presence = RedisPresence(self.store)
        self.results = RedisResults(self.store)
        self.signals = RedisSignals(self.store)
        self.shared = RedisSharedStore(self.store)
        self.workflows = RedisWorkflows(self.store)

    @classmethod
    def on_client(
        cls,
        client: RedisClient,
        url: str,
        config: BackendConfig,
        durability: Durability | None = None,
    ) -> RedisBackend:
        """A backend on an open client (`url` only names it)."""
        store = RedisStore(
            client,
            config.clock,
            Keys(config.prefix),
            retention=config.retention,
            payload_limit=config.payload_limit,
            durability=durability or Durability(),
        )
        return cls(redacted(url), config, store)

    @property
    def client(self) -> RedisClient:
        """The redis-py client (for code that knows it is on Redis, such as tests)."""
        return self.store.client

    async def ping(self) -> None:
        """See `Backend.ping`."""
        try:
            await self.store.client.ping()
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError("ping", type(exc).__name__) from None

    async def vitals(self) -> BackendVitals | None:
        """See `HasVitals.vitals`: the Redis server's (on a Cluster, the master of the hub's
        slot); None for ``memory://``, whose fakeredis has no server to speak of."""
        if is_memory(self.url):
            return None
        try:
            return await read_vitals(self.store.client, self.store.keys.base)
        except (RedisError, OSError) as exc:
            raise BackendUnavailableError("vitals", type(exc).__name__) from None

    async def aclose(self) -> None:
        """See `Backend.aclose`."""
        await close(self.store.client)


def open_redis_backend(
    url: str, config: BackendConfig, *, server: fakeredis.FakeServer | None = None
) -> RedisBackend:
    """The backend for a ``redis://``, ``rediss://`` or ``memory://`` URL (for ``memory://``,
    a fresh in-process server unless `server` is given)."""
    bare, durability = split_durability(url)
    return RedisBackend.on_client(open_redis(bare, server=server), url, config, durability)
