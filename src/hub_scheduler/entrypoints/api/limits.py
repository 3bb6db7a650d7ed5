"""Rate limits: Litestar's limiter, counted in the backend's `SharedStore` so every process
of a deployment shares one budget per principal (per process where the backend has none)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
from litestar import Request
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import CacheObject, RateLimitConfig, RateLimitMiddleware
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from hub_scheduler.domain.ports import SharedStore
from hub_scheduler.entrypoints.api.auditing import SAFE_METHODS

logger = logging.getLogger("hub_scheduler.api")

#: Liveness and readiness probes: never rate limited, so they don't depend on the store.
PROBES = [r"/health$", r"/ready$"]


def _delta(value: int | timedelta | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


@attrs.define
class SharedLitestarStore(Store):
    """A Litestar `Store` over a backend's `SharedStore`, under a namespace of its own."""

    shared: SharedStore
    namespace: str

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:  # fmt: skip  # noqa: E501
        """Store `value` for `expires_in`."""
        data = value.encode() if isinstance(value, str) else value
        await self.shared.set(self._key(key), data, _delta(expires_in))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        """The value, renewing its expiry by `renew_for` when given."""
        value = await self.shared.get(self._key(key))
        if value is not None and renew_for is not None:
            await self.shared.set(self._key(key), value, _delta(renew_for))
        return value

    async def delete(self, key: str) -> None:
        """Remove the value."""
        await self.shared.delete(self._key(key))

    async def delete_all(self) -> None:
        """Remove every value of the shared store."""
        await self.shared.clear()

    async def exists(self, key: str) -> bool:
        """Whether a value is stored."""
        return await self.shared.get(self._key(key)) is not None

    async def expires_in(self, key: str) -> int | None:
        """Whole seconds before the value expires."""
        left = await self.shared.ttl(self._key(key))
        return None if left is None else int(left.total_seconds())


def limit_store(shared: SharedStore | None, namespace: str) -> Store:
    """Where the limits are counted: the backend's shared store, else this process's memory."""
    if shared is None:
        logger.warning("the backend shares no counters: rate limits are counted per process")
        return MemoryStore()
    return SharedLitestarStore(shared, namespace)


class RateLimitWithRetryAfter(RateLimitMiddleware):
    """Litestar's rate limiter, adding the ``Retry-After`` header clients expect on 429."""

    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        """The IETF RateLimit headers plus Retry-After (seconds until the window resets)."""
        headers = super().create_response_headers(cache_object)
        headers["Retry-After"] = headers[self.config.rate_limit_reset_header_key]
        return headers


def _principal_key(kind: str) -> Callable[[Request[Any, Any, Any]], str]:
    def identify(request: Request[Any, Any, Any]) -> str:
        user = request.scope.get("user")
        who = getattr(user, "subject", None) or (request.client.host if request.client else "?")
        return f"hub:{kind}:{who}"

    return identify


def _reads(request: Request[Any, Any, Any]) -> bool:
    return request.method in SAFE_METHODS


def _mutations(request: Request[Any, Any, Any]) -> bool:
    return request.method not in SAFE_METHODS


def rate_limits(reads: int, mutations: int, store: str) -> list[DefineMiddleware]:
    """Separate per-principal limits for reads (GET, HEAD) and for mutations (the other
    methods), in the named store."""
    return [
        RateLimitConfig(
            rate_limit=("minute", limit),
            exclude=PROBES,
            identifier_for_request=_principal_key(kind),
            check_throttle_handler=applies,
            middleware_class=RateLimitWithRetryAfter,
            store=store,
        ).middleware
        for kind, limit, applies in (("read", reads, _reads), ("mutation", mutations, _mutations))
    ]
