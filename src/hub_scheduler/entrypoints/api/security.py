"""JWT bearer auth with a roles claim, role guards and token minting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token

ADMIN = "SystemAdmin"
VIEWER = "JobViewer"
ROLES = (ADMIN, VIEWER)
#: The realm of the ``WWW-Authenticate: Bearer`` challenge on a 401.
REALM = "hub_scheduler"
_ALGORITHM = "HS256"


@attrs.frozen
class Principal:
    """Who is calling: the token's subject and roles."""

    subject: str
    roles: tuple[str, ...]


def principal_of(token: Token) -> Principal:
    """The principal a verified token names (its ``roles`` claim; none if malformed)."""
    roles = token.extras.get("roles", [])
    if not isinstance(roles, list):
        roles = []
    return Principal(token.sub, tuple(str(r) for r in roles))


async def principal_from_token(
    token: Token, connection: ASGIConnection[Any, Any, Any, Any]
) -> Principal:
    """The principal a verified token names (its ``roles`` claim)."""
    del connection
    return principal_of(token)


def jwt_auth(secret: str) -> JWTAuth[Principal]:
    """Bearer-token auth for the admin routes (expiry enforced)."""
    return JWTAuth[Principal](
        token_secret=secret,
        retrieve_user_handler=principal_from_token,
        exclude_opt_key="public",
    )


def decode_principal(token: str, secret: str) -> Principal | None:
    """The principal of `token` if it is valid, unexpired and signed with `secret`."""
    try:
        return principal_of(Token.decode(token, secret, _ALGORITHM))
    except NotAuthorizedException:
        return None


def bearer_principal(
    secret: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any]], Principal | None]:
    """How a request proves a principal before authentication: the token of its
    ``Authorization`` header, read and checked as `jwt_auth(secret)` does."""
    state_key = "hub_scheduler.bearer_principal"

    def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
        state = connection.scope.setdefault("state", {})
        if state_key not in state:  # decoded once per request, however many ask
            header = connection.headers.get("authorization", "")
            token = header.partition(" ")[-1]
            state[state_key] = decode_principal(token, secret) if token else None
        found: Principal | None = state[state_key]
        return found

    return principal


def mint_token(secret: str, subject: str, role: str, ttl: timedelta) -> str:
    """A signed token for `subject` with one role, valid for `ttl`."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return jwt_auth(secret).create_token(
        identifier=subject, token_expiration=ttl, token_extras={"roles": [role]}
    )


def _roles(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, ...]:
    user = connection.scope.get("user")
    if user is None:
        raise NotAuthorizedException("authentication required")
    roles = getattr(user, "roles", ())
    return tuple(roles)


def can_read(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: any admin role may read."""
    if not set(_roles(connection)) & set(ROLES):
        raise PermissionDeniedException(f"one of the roles {', '.join(ROLES)} is required")


def can_act(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: only SystemAdmin may change anything."""
    if ADMIN not in _roles(connection):
        raise PermissionDeniedException(f"the {ADMIN} role is required")
