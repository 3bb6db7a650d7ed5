"""`open_backend(url)`: the backend for a URL, chosen by its scheme.

Built-in schemes are imported only when used (a worker on Redis never loads fakeredis, one on
PostgreSQL never loads redis-py). A third-party package adds a scheme through the
``hub_scheduler.backends`` entry point group, naming a factory with the signature of
`BackendFactory`::

    [project.entry-points."hub_scheduler.backends"]
    sqlite = "hub_sqlite:open_backend"

Tests and applications may also call `register_backend` directly.

Any URL may end in ``?shards=N`` (``redis+cluster://h1:7000,h2:7001?shards=6``): the hub is
then N backends of that URL under prefixes of their own, bundled by `ShardedBackend`
(`hub_scheduler.adapters.sharded`), so one hub spreads over a Cluster's masters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import cast

from hub_scheduler.adapters.sharded import open_sharded, split_shards
from hub_scheduler.domain.errors import UnknownBackendError
from hub_scheduler.domain.ports import Backend, BackendConfig

#: Builds a backend from its URL and the hub's configuration.
BackendFactory = Callable[[str, BackendConfig], Backend]

ENTRY_POINT_GROUP = "hub_scheduler.backends"

#: Scheme -> "module:function" of the built-in backends, imported on first use.
BUILTIN: dict[str, str] = {
    "memory": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "redis": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "rediss": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "unix": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "redis+cluster": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "rediss+cluster": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "redis+sentinel": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "rediss+sentinel": "hub_scheduler.adapters.redis.backend:open_redis_backend",
    "postgresql": "hub_scheduler.adapters.postgres.backend:open_postgres_backend",
    "postgres": "hub_scheduler.adapters.postgres.backend:open_postgres_backend",
}

_registered: dict[str, BackendFactory] = {}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Make `open_backend` use `factory` for URLs of `scheme` (replacing any other)."""
    _registered[scheme.lower()] = factory


def unregister_backend(scheme: str) -> None:
    """Undo `register_backend` (built-in schemes come back)."""
    _registered.pop(scheme.lower(), None)


def _load(target: str) -> BackendFactory:
    module, _, name = target.partition(":")
    return cast("BackendFactory", getattr(importlib.import_module(module), name))


def known_schemes() -> list[str]:
    """Every scheme `open_backend` accepts, sorted."""
    plugins = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(BUILTIN) | set(_registered) | plugins)


def scheme_of(url: str) -> str:
    """The lower-cased scheme of `url` ('' when it has none)."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def factory_for(scheme: str) -> BackendFactory:
    """The factory for `scheme`. Raises `UnknownBackendError` naming the known schemes."""
    if scheme in _registered:
        return _registered[scheme]
    if scheme in BUILTIN:
        return _load(BUILTIN[scheme])
    for point in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        return cast("BackendFactory", point.load())
    raise UnknownBackendError(scheme, known_schemes())


def open_backend(url: str, config: BackendConfig) -> Backend:
    """The backend for `url`, opened with `config`.

    Raises `UnknownBackendError` (naming the known schemes, never the URL, which may hold a
    password) when no backend serves the URL's scheme, `InvalidBackendUrlError` for a
    ``shards`` argument that is not a whole number from 1 to 256. Opening connects lazily:
    call ``await backend.ping()`` to find out whether the store answers.

    With ``?shards=N`` (N > 1) the backend is a `ShardedBackend` of N backends opened from
    the URL without that argument; ``shards=1`` is the plain backend.
    """
    bare, count = split_shards(url)
    factory = factory_for(scheme_of(bare))
    if count == 1:
        return factory(bare, config)
    return open_sharded(url, count, config, lambda shard: factory(bare, shard))
