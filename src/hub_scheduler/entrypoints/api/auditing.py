"""Who acts through the web surfaces, and the audit of attempts refused before a use case.

Each mutating route names its `Action` in its ``opt`` (`audited`), so a refused attempt is
recorded with the same vocabulary as the action it tried. Refusals by authentication (401)
and rate limits (429) are raised by middleware; refusals by role guards and CSRF checks
(403) come back as responses from the route's own exception handler. `RefusalAudit` records
both through a `RefusalLog` before the request is done: no write is left running in the
background, so there is nothing to drain on shutdown.

Refusals are what anyone who reaches the port can cause, so they cost the store little: at
most one entry per requester (principal or client address) per minute, the rest counted,
and every text field taken from the request cut to `FIELD_MAX` characters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import anyio
import attrs
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from hub_scheduler.domain.admin import Action, Actor, AdminService
from hub_scheduler.domain.model import iso_z
from hub_scheduler.domain.ports import SharedStore
from hub_scheduler.entrypoints.api import problems
from hub_scheduler.entrypoints.api.limits import FIELD_MAX, SAFE_METHODS, Requester, cut

#: Where a route's audit facts live in its ``opt``.
AUDIT_OPT = "hub_audit"
#: Statuses that mean "refused before the use case": not signed in, not allowed, too many.
REFUSED_STATUSES = frozenset({401, 403, 429})
API_CHANNEL = "api"
#: How long the refusals of one requester share one audit entry.
REFUSALS_WINDOW = timedelta(minutes=1)
#: How long a requester's refusal count is kept, to be reported by its next entry.
_TALLY_KEPT = timedelta(days=1)
#: Compare-and-set attempts to count one refusal before giving up on counting it.
_SWAP_TRIES = 20
#: A refusal the route's exception handler answered, waiting in the scope's state for
#: `RefusalAudit` (exception handlers are synchronous and cannot write it themselves).
_REFUSAL_STATE = "hub_scheduler.refusal"


@attrs.frozen
class Audited:
    """What a mutating route does, as the audit trail names it.

    Attributes:
        action: the use case it calls.
        target: the target as a template over the path parameters (``"{name}"``); None
            when the target is in the body, which a refused request is not read for: the
            request path stands in.
    """

    action: Action
    target: str | None = None

    def target_of(self, path_params: Mapping[str, Any], path: str) -> str:
        """The target of one request."""
        return path if self.target is None else self.target.format_map(path_params)


def audited(action: Action, target: str | None = None) -> dict[str, Any]:
    """The ``opt`` of a route that performs `action` on `target` (see `Audited`)."""
    return {AUDIT_OPT: Audited(action, target)}


def attempted(scope: Scope) -> tuple[str, str]:
    """The action and target a request attempted, from its route's `Audited` facts (else
    its method and path)."""
    path = scope["path"]
    handler = scope.get("route_handler")
    facts = handler.opt.get(AUDIT_OPT) if handler is not None else None
    if not isinstance(facts, Audited):
        return cut(f"{scope.get('method')} {path}"), cut(path)
    return facts.action.value, cut(facts.target_of(scope.get("path_params") or {}, path))


def actor_of(
    connection: ASGIConnection[Any, Any, Any, Any], channel: str, user: object | None = None
) -> Actor:
    """The actor of a request: the subject and roles of `user` (by default the one
    authentication middleware put in the scope; ``anonymous`` without one), the client
    address and the ``X-Request-Id`` header (each cut to `FIELD_MAX` characters)."""
    user = user if user is not None else connection.scope.get("user")
    client = connection.client
    request_id = connection.headers.get("x-request-id")
    return Actor(
        subject=cut(str(getattr(user, "subject", None) or "anonymous")),
        roles=tuple(cut(str(r)) for r in getattr(user, "roles", ())[:10]),
        channel=channel,
        client=cut(client.host) if client and client.host else None,
        request_id=cut(request_id) if request_id else None,
    )


def api_actor(request: Request[Any, Any, Any]) -> Actor:
    """Dependency: the actor of an API request."""
    return actor_of(request, API_CHANNEL)


def note_refusal(request: Request[Any, Any, Any], exc: HTTPException) -> None:
    """Leave a refusal answered by an exception handler for `RefusalAudit` to record."""
    if exc.status_code in REFUSED_STATUSES:
        request.scope.setdefault("state", {})[_REFUSAL_STATE] = exc.detail


def on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """The admin routes' HTTP errors as problems, noting a refusal for `RefusalAudit`."""
    note_refusal(request, exc)
    return problems.http_problem(request, exc)


@attrs.frozen
class _Tally:
    """A requester's refusals since the first one of its window."""

    since: datetime
    count: int

    def encode(self) -> bytes:
        return json.dumps({"since": self.since.isoformat(), "count": self.count}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> _Tally | None:
        if raw is None:
            return None
        data = json.loads(raw)
        return cls(datetime.fromisoformat(data["since"]), int(data["count"]))


@attrs.define(eq=False)
class RefusalLog:
    """Writes refused attempts to the audit trail, at most one entry per requester per
    `window`.

    A requester's first refusal is recorded and opens its window; the refusals that follow
    inside it are only counted, and the entry that opens the requester's next window says
    how many there were. On a backend with a shared store the count is changed there by
    compare-and-set (`SharedStore.swap`), so of API processes refusing one requester at the
    same moment exactly one records the entry; without one, per process.

    Attributes:
        admin: the service whose audit trail records the refusals (and whose clock counts).
        store: the name of the Litestar store the counts are kept in.
        requester: who a request counts as (the rate limits' `Requester`).
        window: how long one entry stands for a requester's refusals.
    """

    admin: AdminService
    store: str
    requester: Requester
    window: timedelta = REFUSALS_WINDOW
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)

    def __deepcopy__(self, memo: dict[int, Any]) -> RefusalLog:
        # Litestar deep-copies a router when an app registers it; the service (and the
        # connections under it) and the lock must be shared, not copied.
        return self

    async def record(self, scope: Scope, channel: str, detail: str) -> None:
        """Audit one refused request (or only count it, inside its requester's window)."""
        connection = ASGIConnection[Any, Any, Any, Any](scope)
        who = self.requester.key(connection)
        store = scope["litestar_app"].stores.get(self.store)
        now = self.admin.clock.now()
        key = f"refused:{who}"
        shared = self.admin.backend.shared
        if shared is not None:
            opened, tally = await self._count_shared(shared, key, now)
            if not opened:
                return
        else:
            async with self._lock:
                tally = _Tally.decode(await store.get(key))
                if tally is not None and now < tally.since + self.window:
                    counted = _Tally(tally.since, tally.count + 1)
                    await store.set(key, counted.encode(), expires_in=_TALLY_KEPT)
                    return
                await store.set(key, _Tally(now, 1).encode(), expires_in=_TALLY_KEPT)
        detail = cut(detail, 2 * FIELD_MAX)
        if tally is not None and tally.count > 1:
            detail += (
                f" (after {tally.count - 1} more refusals of {who} counted, not recorded,"
                f" in the {self.window.total_seconds():g} s from {iso_z(tally.since)})"
            )
        action, target = attempted(scope)
        actor = actor_of(connection, channel, self.requester.user(connection))
        await self.admin.refused(actor, action, target, detail)

    async def _count_shared(
        self, shared: SharedStore, key: str, now: datetime
    ) -> tuple[bool, _Tally | None]:
        """Count one refusal in `shared` by compare-and-set: whether it opened a new window
        (so it is to be recorded), and the tally of the window before. Under a storm of
        refusals that keeps winning the race elsewhere, this one goes uncounted."""
        tally = None
        for _ in range(_SWAP_TRIES):
            raw = await shared.get(key)
            tally = _Tally.decode(raw)
            inside = tally is not None and now < tally.since + self.window
            new = _Tally(tally.since, tally.count + 1) if inside and tally else _Tally(now, 1)
            if await shared.swap(key, raw, new.encode(), _TALLY_KEPT):
                return not inside, tally
        return False, tally


class RefusalAudit(ASGIMiddleware):
    """Records every refused mutation (401, 403, 429) through a `RefusalLog`.

    Listed before the rate-limit and authentication middleware, so it sees what they raise.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, log: RefusalLog, channel: str = API_CHANNEL) -> None:
        self.log = log
        self.channel = channel

    def __deepcopy__(self, memo: dict[int, Any]) -> RefusalAudit:
        # See `RefusalLog.__deepcopy__`. Nothing here is per request.
        return self

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass the request on; record it afterwards if it was refused."""
        if scope.get("method") in SAFE_METHODS:
            await next_app(scope, receive, send)
            return
        try:
            await next_app(scope, receive, send)
        except HTTPException as exc:
            if exc.status_code in REFUSED_STATUSES:
                await self.log.record(scope, self.channel, exc.detail)
            raise
        detail = scope.get("state", {}).pop(_REFUSAL_STATE, None)
        if detail is not None:
            await self.log.record(scope, self.channel, str(detail))
