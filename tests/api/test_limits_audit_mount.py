"""Rate limits, the audit trail, mounting into a host app and the secret rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar, get
from litestar.exceptions import NotFoundException
from litestar.stores.memory import MemoryStore

from hub_scheduler import Cron, Hub, Schedule
from hub_scheduler.entrypoints.api.app import InsecureSecretError, create_app
from hub_scheduler.entrypoints.api.routes import admin_router
from hub_scheduler.entrypoints.api.security import jwt_auth, mint_token
from hub_scheduler.entrypoints.settings import Settings
from tests.api.conftest import SECRET, Api, build_app, client_for


async def test_mutations_are_limited_per_principal_with_retry_after(api: Api) -> None:
    """The third mutation in a minute is a 429 problem with Retry-After, audited as refused
    (once: the next refusal is only counted); reads count apart, and another principal has
    a budget of their own. Answers let through carry the RateLimit headers, not
    Retry-After."""
    async with client_for(build_app(api.hub, reads=3, mutations=2)) as client:
        answers = [await client.post("/api/v1/queue/pause", headers=api.admin) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 429]
        assert [("retry-after" in r.headers, "ratelimit-limit" in r.headers) for r in answers] == [
            (False, True), (False, True), (True, True),
        ]  # fmt: skip
        limited = await client.post("/api/v1/queue/resume", headers=api.admin)
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert 0 < int(limited.headers["retry-after"]) <= 60
        read = await client.get("/api/v1/queue", headers=api.admin)
        assert (read.status_code, "retry-after" in read.headers) == (200, False)
        other = await client.post("/api/v1/queue/resume", headers=api.viewer)
    assert other.status_code == 403  # bob has his own budget: refused by role, not by limit
    entries = [(e.actor, e.action, e.outcome) for e in reversed(await api.audit())]
    assert entries == [
        ("alice", "queue.pause", "ok"),
        ("alice", "queue.pause", "ok"),
        ("alice", "queue.pause", "refused"),
        ("bob", "queue.resume", "refused"),
    ]


async def test_limits_are_shared_by_every_process(api: Api) -> None:
    """Two app instances on one store share a principal's budget (the store is Redis)."""
    async with (
        client_for(build_app(api.hub, reads=3, mutations=2)) as first,
        client_for(build_app(api.hub, reads=3, mutations=2)) as second,
    ):
        first_two = [
            (await first.post("/api/v1/queue/pause", headers=api.admin)).status_code,
            (await second.post("/api/v1/queue/pause", headers=api.admin)).status_code,
        ]
        third = await second.post("/api/v1/queue/pause", headers=api.admin)
    assert (first_two, third.status_code) == ([200, 200], 429)


async def test_mutations_are_audited_with_before_and_after(api: Api) -> None:
    """A schedule edit is recorded with actor, roles, channel, target, request id and the
    before/after state."""
    headers = {**api.admin, "X-Request-ID": "req-42"}
    nightly = Schedule(Cron("0 2 * * *", "Australia/Sydney"), job="syncXero", id="nightly")
    await api.hub.schedules.create(nightly, api.hub.clock.now())  # a runtime schedule
    response = await api.client.patch(
        "/api/v1/schedules/nightly", headers=headers, json={"cron": "0 3 * * *"}
    )
    assert response.status_code == 200
    [entry] = (await api.client.get("/api/v1/audit", headers=api.viewer)).json()["items"]
    assert (entry["actor"], entry["roles"], entry["channel"], entry["action"]) == (
        "alice",
        ["SystemAdmin"],
        "api",
        "schedule.update",
    )
    assert (entry["target"], entry["outcome"], entry["request_id"]) == (
        "nightly",
        "ok",
        "req-42",
    )
    assert entry["before"]["trigger"] == "At 02:00 every day (Australia/Sydney)"
    assert entry["after"]["trigger"] == "At 03:00 every day (Australia/Sydney)"


async def test_router_mounted_in_a_host_app_keeps_the_host_format() -> None:
    """Host routes keep their own errors; the admin routes answer problem+json."""

    @get("/host/thing")
    async def host_thing() -> dict[str, Any]:
        raise NotFoundException("no such thing")

    async with Hub() as hub:
        auth = jwt_auth("a-host-secret-that-is-long-enough-0123456789")
        host = Litestar(
            route_handlers=[host_thing, admin_router(hub, auth_middleware=[auth.middleware])],
        )  # fmt: skip
        transport = httpx.ASGITransport(app=cast("Any", host))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            mine = await client.get("/host/thing")
            theirs = await client.get("/api/v1/jobs")
    assert mine.status_code == 404
    assert mine.headers["content-type"].startswith("application/json")
    assert theirs.status_code == 401
    assert theirs.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("secret", [None, "too-short"])
def test_a_real_deployment_refuses_a_missing_or_short_secret(secret: str | None) -> None:
    """On Redis, no or a short HUB_SCHEDULER_JWT_SECRET stops the app from being built."""
    hub = Hub("redis://127.0.0.1:1/0")
    settings = Settings(url=hub.url, jwt_secret=secret)
    with pytest.raises(InsecureSecretError, match="at least 32"):
        create_app(hub, settings)


async def test_a_dead_store_is_a_503_problem_not_a_crash() -> None:
    """With Redis unreachable, every answer is a 503 problem without internals: /ready,
    /queue (status down), reads, and the Redis-backed rate limiter itself."""
    async with Hub("redis://127.0.0.1:1/0") as hub:
        hub.job("syncXero")(lambda _: None)
        token = mint_token(SECRET, "ops", "JobViewer", timedelta(hours=1))
        headers = {"Authorization": f"Bearer {token}"}
        # Mounted with its limits counted in memory, the router itself meets the dead store.
        router = admin_router(hub, auth_middleware=[jwt_auth(SECRET).middleware])
        host = Litestar(route_handlers=[router], stores={"hub_scheduler_rate_limit": MemoryStore()})
        standalone = create_app(hub, Settings(url=hub.url, jwt_secret=SECRET))
        answers = []
        for app in (host, standalone):
            transport = httpx.ASGITransport(app=cast("Any", app))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answers.append(await client.get("/api/v1/ready"))
                answers.append(await client.get("/api/v1/queue", headers=headers))
                answers.append(await client.get("/api/v1/jobs/history", headers=headers))
    for response in answers:
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "127.0.0.1:1" not in response.text
    assert answers[0].json()["detail"] == "the store is not reachable"
    assert answers[1].json()["status_of_queue"] == "down"
    assert answers[3].json()["detail"] == "the store is not reachable"  # probes skip the limiter
