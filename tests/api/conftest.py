"""One admin app per test module and backend (memory:// and the real Redis), over a hub with
the reference jobs, reset before every test; and tokens for each role.

The async tests here run on their module's event loop, where the module's app and its
connections live.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import attrs
import httpx
import jwt
import pytest
import pytest_asyncio
from litestar import Litestar

from hub_scheduler import Cron, Hub, RetryPolicy
from hub_scheduler.domain.ports import AuditEntry
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
    app: Litestar
    client: httpx.AsyncClient
    admin: dict[str, str]
    viewer: dict[str, str]
    expired: dict[str, str]

    async def audit(self) -> list[AuditEntry]:
        """Every audit entry of this test, newest first."""
        return list((await self.hub.audit.list(limit=500)).items)


def expired_token() -> str:
    """A correctly signed SystemAdmin token that expired a minute ago (Litestar won't mint one)."""
    now = int(time.time())
    claims = {"sub": "carol", "iat": now - 3600, "exp": now - 60, "roles": ["SystemAdmin"]}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def build_app(hub: Hub, *, reads: int = 10_000, mutations: int = 10_000) -> Litestar:
    """The standalone app for `hub` signing with `SECRET` (rate limits high unless given)."""
    settings = Settings(
        url=hub.url, jwt_secret=SECRET, rate_limit_reads=reads, rate_limit_mutations=mutations
    )
    return create_app(hub, settings)


@contextlib.asynccontextmanager
async def client_for(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling `app` in this event loop (no network)."""
    transport = httpx.ASGITransport(app=cast("Any", app))
    # No app.lifespan(): anyio's cancel scope must not span pytest-asyncio's setup and
    # teardown tasks, and this app has no startup work of its own.
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every async test of this package on its module's event loop (the hook sees every
    test of the session: those of other packages are left alone)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and pytest_asyncio.is_async_test(item):
            item.add_marker(pytest.mark.asyncio(loop_scope="module"), append=False)


@pytest.fixture(scope="module", params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Every API test runs on memory:// and on the real Redis."""
    return str(request.getfixturevalue("redis_url")) if request.param == "redis" else "memory://"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(store_url: str) -> AsyncIterator[Api]:
    """The app of one test module on one backend, under a key prefix of its own."""
    async with Hub(store_url, prefix=f"hubtest-api-{uuid.uuid4().hex[:12]}") as hub:
        hub.job("syncXero", schedules=[Cron("0 2 * * *", "Australia/Sydney")])(_noop)
        hub.job("flaky", retry=RetryPolicy.none())(_noop)
        app = build_app(hub)
        async with client_for(app) as client:
            yield Api(
                hub,
                app,
                client,
                admin=bearer(mint_token(SECRET, "alice", "SystemAdmin", timedelta(hours=1))),
                viewer=bearer(mint_token(SECRET, "bob", "JobViewer", timedelta(hours=1))),
                expired=bearer(expired_token()),
            )
        await drop_keys(hub)


@pytest_asyncio.fixture(loop_scope="module")
async def api(served: Api) -> Api:
    """The module's app with its store as new: every key of the hub dropped (runs, history,
    statistics, audit trail, rate-limit counters), then the declared schedules synced."""
    await drop_keys(served.hub)
    await served.hub.sync_schedules()
    return served
