"""Rate limits: Litestar's limiter, counted in the backend's `SharedStore` so every process
of a deployment shares one budget per principal (per process where the backend has none).

The limiter runs before authentication, so anonymous requests and badly signed tokens are
limited too: a request counts as its principal when its credentials are valid, else as its
client address (`Requester`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import attrs
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import CacheObject, RateLimitConfig, RateLimitMiddleware
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.types import Message, Send

from hub_scheduler.domain.ports import SharedStore
from hub_scheduler.entrypoints.api.security import Principal

#: Methods that only read.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The longest text a refused request puts in the audit trail (or a rate-limit key) from
#: what it sent: request id, path, client address, subject; longer text is cut.
FIELD_MAX = 128

logger = logging.getLogger("hub_scheduler.api")

#: Liveness and readiness probes: never rate limited, so they don't depend on the store.
PROBES = [r"/health$", r"/ready$"]


def cut(text: str, limit: int = FIELD_MAX) -> str:
    """`text`, cut to `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    """Litestar's rate limiter, adding the ``Retry-After`` header clients expect on a 429
    (and only there: other answers carry the RateLimit headers alone)."""

    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        """The 429's headers: the IETF RateLimit headers plus Retry-After (seconds until the
        window resets)."""
        headers = super().create_response_headers(cache_object)
        headers["Retry-After"] = headers[self.config.rate_limit_reset_header_key]
        return headers

    def create_send_wrapper(self, send: Send, cache_object: CacheObject) -> Send:
        """Add the RateLimit headers (without Retry-After) to an answer that was let through."""
        headers = super().create_response_headers(cache_object)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                mutable = MutableScopeHeaders(message)
                for key, value in headers.items():
                    mutable[key] = value
            await send(message)

        return send_with_headers


#: What a request proves about its caller before authentication runs: a principal when it
#: carries valid credentials (a bearer token, a session cookie), else None.
PrincipalOf = Callable[[ASGIConnection[Any, Any, Any, Any]], Principal | None]


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address (the peer's, or the one a trusted proxy forwarded), cut to
    `FIELD_MAX`."""
    client = connection.client
    return cut(client.host if client and client.host else "unknown")


@attrs.frozen
class Requester:
    """Who a request counts as, for rate limits and for the audit of refusals: the user
    authentication put in the scope, else the principal its credentials prove (checked here,
    before authentication), else nobody but its client address.

    Attributes:
        principal_of: how to read a principal from the credentials (None: only a user that
            authentication already put in the scope counts).
    """

    principal_of: PrincipalOf | None = None

    def user(self, connection: ASGIConnection[Any, Any, Any, Any]) -> object | None:
        """The authenticated user (with ``subject`` and ``roles``), if any."""
        user: object | None = connection.scope.get("user")
        if getattr(user, "subject", None):
            return user
        return self.principal_of(connection) if self.principal_of is not None else None

    def key(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        """``principal:<subject>`` for an authenticated request, else ``client:<address>``."""
        user = self.user(connection)
        if user is not None:
            return f"principal:{getattr(user, 'subject', '')}"
        return f"client:{client_address(connection)}"


def _reads(request: Request[Any, Any, Any]) -> bool:
    return request.method in SAFE_METHODS


def _mutations(request: Request[Any, Any, Any]) -> bool:
    return request.method not in SAFE_METHODS


def rate_limits(
    reads: int,
    mutations: int,
    store: str,
    requester: Requester | None = None,
    exclude: Sequence[str] = (),
) -> list[DefineMiddleware]:
    """Separate limits for reads (GET, HEAD) and for mutations (the other methods), per
    `Requester` key (a principal, or a client address), counted in the named store. The
    probes and the paths matching a pattern of `exclude` are not limited.

    List them before the authentication middleware: a request without valid credentials
    is counted (by its address) before it is refused.
    """
    who = requester or Requester()

    def identify(kind: str) -> Callable[[Request[Any, Any, Any]], str]:
        return lambda request: f"hub:{kind}:{who.key(request)}"

    return [
        RateLimitConfig(
            rate_limit=("minute", limit),
            exclude=[*PROBES, *exclude],
            identifier_for_request=identify(kind),
            check_throttle_handler=applies,
            middleware_class=RateLimitWithRetryAfter,
            store=store,
        ).middleware
        for kind, limit, applies in (("read", reads, _reads), ("mutation", mutations, _mutations))
    ]
