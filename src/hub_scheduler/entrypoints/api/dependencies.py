"""What the routes get injected (Litestar `Provide`): the hub, its admin service, the actor."""

from __future__ import annotations

from typing import TypeVar

from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from hub_scheduler.domain.admin import Actor, AdminService
from hub_scheduler.entrypoints.api.auditing import api_actor
from hub_scheduler.hub import Hub

T = TypeVar("T")

# Parameters injected by name. They are the app's own objects, not request input, so the
# signature model passes them through as they are (`SkipValidation`).
HubDep = NamedDependency[SkipValidation[Hub]]
AdminDep = NamedDependency[SkipValidation[AdminService]]
ActorDep = NamedDependency[SkipValidation[Actor]]


def provide_value(value: T) -> Provide:
    """A dependency that is always `value` (a resource built once, at the composition root)."""

    def provide() -> T:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def admin_of(hub: HubDep) -> AdminService:
    """Dependency: the hub's admin use cases."""
    return hub.admin


def hub_dependencies(hub: Hub) -> dict[str, Provide]:
    """``hub`` and ``admin`` for every route of a router over `hub`."""
    return {"hub": provide_value(hub), "admin": Provide(admin_of, sync_to_thread=False)}


def api_dependencies(hub: Hub) -> dict[str, Provide]:
    """The API's dependencies: `hub_dependencies` plus the ``actor`` of each request."""
    return {**hub_dependencies(hub), "actor": Provide(api_actor, sync_to_thread=False)}
