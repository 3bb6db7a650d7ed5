"""`migrate_backend(url, prefix)`: bring a backend's schema up to date, whatever its kind
(what ``hub-scheduler db migrate`` runs).

Backends with a schema name their migrator here, imported only when used (like `BUILTIN` in
`hub_scheduler.adapters.backends`); a store without one (Redis) needs no migration.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import cast

from hub_scheduler.adapters.backends import factory_for, scheme_of

#: Migrates the schema of hub `prefix` at a URL; returns the names of the migrations applied.
Migrator = Callable[[str, str], Awaitable[list[str]]]

#: Scheme -> "module:function" of the built-in migrators.
MIGRATORS: dict[str, str] = {
    "postgresql": "hub_scheduler.adapters.postgres.schema:migrate",
    "postgres": "hub_scheduler.adapters.postgres.schema:migrate",
}


async def migrate_backend(url: str, prefix: str = "hub") -> list[str]:
    """Apply the migrations the backend at `url` lacks for hub `prefix`; returns their names
    (empty when it was up to date or needs none). Raises `UnknownBackendError` for a URL no
    backend serves and `BackendUnavailableError` when the store cannot be reached."""
    scheme = scheme_of(url)
    target = MIGRATORS.get(scheme)
    if target is None:
        factory_for(scheme)  # an unknown scheme is an error; a known one needs no migration
        return []
    module, _, name = target.partition(":")
    migrator = cast("Migrator", getattr(importlib.import_module(module), name))
    return await migrator(url, prefix)
