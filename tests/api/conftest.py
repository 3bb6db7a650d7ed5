"""An admin app over a memory:// hub with the reference jobs, and tokens for each role."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import attrs
import httpx
import jwt
import pytest

from hub_scheduler import Cron, Hub, RetryPolicy
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.entrypoints.api.app import create_app
from hub_scheduler.entrypoints.api.security import mint_token
from hub_scheduler.entrypoints.settings import Settings
from tests.conftest import drop_keys

SECRET = "x" * 40


async def _noop(ctx: JobContext) -> None:
    del ctx


@attrs.frozen
class Api:
    """The app under test, its hub, a client and headers per role."""

    hub: Hub
    client: httpx.AsyncClient
    admin: dict[str, str]
    viewer: dict[str, str]
    expired: dict[str, str]


def expired_token() -> str:
    """A correctly signed SystemAdmin token that expired a minute ago (Litestar won't mint one)."""
    now = int(time.time())
    claims = {"sub": "carol", "iat": now - 3600, "exp": now - 60, "roles": ["SystemAdmin"]}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Every API test runs on memory:// and on the real Redis."""
    return str(request.getfixturevalue("redis_url")) if request.param == "redis" else "memory://"


@pytest.fixture
async def api(
    request: pytest.FixtureRequest, store_url: str, key_prefix: str
) -> AsyncIterator[Api]:
    """The standalone app (limits high unless a test asks otherwise), keys of its own."""
    limits = getattr(request, "param", {"rate_limit_reads": 10_000, "rate_limit_mutations": 10_000})
    prefix = key_prefix.replace(":", "-")
    async with Hub(store_url, prefix=prefix) as hub:
        hub.job("syncXero", schedules=[Cron("0 2 * * *", "Australia/Sydney")])(_noop)
        hub.job("flaky", retry=RetryPolicy.none())(_noop)
        await hub.sync_schedules()
        app = create_app(hub, Settings(redis_url=store_url, jwt_secret=SECRET, **limits))
        transport = httpx.ASGITransport(app=cast("Any", app))
        # No app.lifespan(): anyio's cancel scope must not span pytest-asyncio's setup and
        # teardown tasks, and this app has no startup work of its own.
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Api(
                hub,
                client,
                admin=bearer(mint_token(SECRET, "alice", "SystemAdmin", timedelta(hours=1))),
                viewer=bearer(mint_token(SECRET, "bob", "JobViewer", timedelta(hours=1))),
                expired=bearer(expired_token()),
            )
        if store_url != "memory://":
            await drop_keys(hub)
