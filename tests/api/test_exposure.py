"""Safe to expose: what anyone who reaches the port can do is limited and costs the store
little; the API and dashboard speak HTTP auth and cookies correctly, also behind a proxy."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import attrs
import httpx
import pytest
from litestar import Litestar
from pydantic import ValidationError

from hub_scheduler import Hub
from hub_scheduler.entrypoints.api.app import create_app
from hub_scheduler.entrypoints.api.limits import FIELD_MAX
from hub_scheduler.entrypoints.api.security import jwt_auth, mint_token
from hub_scheduler.entrypoints.settings import Settings
from hub_scheduler.testing import FakeClock
from tests.api.conftest import SECRET, Api, bearer, build_app, client_for
from tests.conftest import drop_keys, fresh_prefix

HUGE = "r" * 4096


@contextlib.asynccontextmanager
async def _client(
    app: Litestar, *, base_url: str = "http://t", client: tuple[str, int] = ("127.0.0.1", 1234)
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` calling from the address `client`."""
    transport = httpx.ASGITransport(app=cast("Any", app), client=client)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        yield http


def _token(subject: str, role: str = "SystemAdmin", secret: str = SECRET) -> dict[str, str]:
    return bearer(mint_token(secret, subject, role, timedelta(hours=1)))


async def _sign_in(client: httpx.AsyncClient, subject: str, role: str = "SystemAdmin") -> str:
    """Sign in to the dashboard; the page's CSRF value."""
    token = mint_token(SECRET, subject, role, timedelta(hours=1))
    assert (await client.post("/admin/login", data={"token": token})).status_code == 302
    match = re.search(r'"X-Hub-CSRF": "([0-9a-f]+)"', (await client.get("/admin/")).text)
    assert match is not None
    return match.group(1)


def _entry_sizes(entry: Any) -> dict[str, int]:
    return {k: len(v) for k, v in attrs.asdict(entry).items() if isinstance(v, str)}


async def test_anonymous_mutations_are_limited_and_audited_once_with_bounded_fields(
    api: Api,
) -> None:
    """Anonymous POSTs with a 4 KB request id and a 4 KB path: limited by client address
    (401s, then 429s with Retry-After), and the whole burst is one audit entry whose text
    fields are cut to 128 characters."""
    async with client_for(build_app(api.hub, mutations=5)) as client:
        answers = [
            await client.post(f"/api/v1/jobs/{HUGE}/pause", headers={"X-Request-Id": HUGE})
            for _ in range(8)
        ]
    assert [r.status_code for r in answers] == [401] * 5 + [429] * 3
    assert ["retry-after" in r.headers for r in answers] == [False] * 5 + [True] * 3
    [entry] = await api.audit()
    assert (entry.actor, entry.action, entry.outcome) == ("anonymous", "job.pause", "refused")
    assert max(_entry_sizes(entry).values()) <= FIELD_MAX
    assert entry.request_id == "r" * (FIELD_MAX - 1) + "…"


async def test_badly_signed_tokens_count_as_their_address(api: Api) -> None:
    """Tokens signed with another secret prove no principal: whatever subjects they name,
    they share their address's budget."""
    async with client_for(build_app(api.hub, mutations=3)) as client:
        statuses = [
            (
                await client.post("/api/v1/queue/pause", headers=_token(name, secret="z" * 40))
            ).status_code
            for name in ("a", "b", "c", "d")
        ]
    assert statuses == [401, 401, 401, 429]
    assert not (await api.hub.queue.snapshot()).paused


async def test_a_valid_principal_keeps_its_budget_when_its_address_is_exhausted(
    api: Api,
) -> None:
    """Anonymous traffic from an address does not use up the budget of a principal calling
    from the same address."""
    async with client_for(build_app(api.hub, mutations=2)) as client:
        anonymous = [(await client.post("/api/v1/queue/pause")).status_code for _ in range(3)]
        alice = await client.post("/api/v1/queue/pause", headers=api.admin)
    assert (anonymous, alice.status_code) == ([401, 401, 429], 200)


async def test_refusals_are_counted_and_reported_by_the_next_window_entry() -> None:
    """Inside a minute a requester's refusals are one entry; the entry of its next refusal
    after the minute says how many more were counted."""
    clock = FakeClock(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    async with Hub("memory://", clock=clock) as hub:
        async with client_for(build_app(hub)) as client:
            for _ in range(4):
                assert (await client.post("/api/v1/queue/pause")).status_code == 401
            clock.advance(timedelta(seconds=61))
            assert (await client.post("/api/v1/queue/resume")).status_code == 401
        entries = list(reversed((await hub.audit.list()).items))
    assert [(e.action, e.at) for e in entries] == [
        ("queue.pause", datetime(2026, 5, 1, 9, 0, tzinfo=UTC)),
        ("queue.resume", datetime(2026, 5, 1, 9, 1, 1, tzinfo=UTC)),
    ]
    assert entries[0].detail == "No JWT token found in request header"
    assert entries[1].detail == (
        "No JWT token found in request header (after 3 more refusals of client:127.0.0.1"
        " counted, not recorded, in the 60 s from 2026-05-01T09:00:00Z)"
    )


async def test_two_api_processes_record_one_entry_for_a_requesters_window(
    redis_url: str,
) -> None:
    """Two apps on one real Redis (two API replicas) refusing one client at the same moment
    write one audit entry between them: the count is changed by compare-and-set in the
    backend's shared store, not per process."""
    async with Hub(redis_url, prefix=fresh_prefix()) as hub:
        try:
            async with client_for(build_app(hub)) as first, client_for(build_app(hub)) as second:
                answers = await asyncio.gather(
                    *(c.post("/api/v1/queue/pause") for c in (first, second) * 10)
                )
            entries = (await hub.audit.list()).items
        finally:
            await drop_keys(hub)
    assert {a.status_code for a in answers} == {401}
    assert [(e.action, e.outcome) for e in entries] == [("queue.pause", "refused")]


async def test_dashboard_actions_share_the_principals_budget_with_the_api(api: Api) -> None:
    """An admin's dashboard actions are rate limited (429 alert with Retry-After), audited
    once as refused, and count in the same budget as their API calls."""
    async with client_for(build_app(api.hub, mutations=4)) as client:
        csrf = await _sign_in(client, "alice")  # the sign-in counts for the address
        headers = {"X-Hub-CSRF": csrf, "HX-Request": "true"}
        actions = [await client.post("/admin/actions/queue/pause", headers=headers)
                   for _ in range(5)]  # fmt: skip
        api_call = await client.post("/api/v1/queue/resume", headers=api.admin)
    assert [r.status_code for r in actions] == [200, 200, 200, 200, 429]
    assert actions[-1].headers["content-type"].startswith("text/html")
    assert 0 < int(actions[-1].headers["retry-after"]) <= 60
    assert "retry-after" not in actions[0].headers
    assert api_call.status_code == 429
    refused = [(e.actor, e.channel, e.action) for e in await api.audit() if e.outcome == "refused"]
    assert refused == [("alice", "dashboard", "queue.pause")]


async def test_dashboard_assets_are_cached_by_version_and_not_rate_limited(api: Api) -> None:
    """A page names its scripts and styles by a hash of their content, the browser may keep
    them a year, and loading them does not spend the reads budget that the page and its
    refreshing fragments need (a page loads eight of them)."""
    async with client_for(build_app(api.hub, reads=3)) as client:
        await _sign_in(client, "alice")
        page = await client.get("/admin/")
        named = re.findall(r'(?:src|href)="/admin/(static/[^"]+)"', page.text)
        assets = [a for a in named if re.fullmatch(r"static/[^?]+\?v=[0-9a-f]{12}", a)]
        loads = [await client.get(f"/admin/{a}") for a in assets * 3]
        fragment = await client.get("/admin/fragments/summary", headers={"HX-Request": "true"})
        refused = await client.get("/admin/fragments/summary", headers={"HX-Request": "true"})
    assert len(assets) == len(named) == 8  # every static file named with its version
    assert {r.status_code for r in loads} == {200}
    # The version is the content's: a new release's file gets a new URL.
    for asset, load in zip(assets, loads, strict=False):
        assert asset.endswith("?v=" + hashlib.sha256(load.content).hexdigest()[:12])
    assert "max-age=31536000" in loads[0].headers["cache-control"]
    assert (page.status_code, fragment.status_code, refused.status_code) == (200, 200, 429)


async def test_dashboard_sign_in_is_rate_limited_per_address(api: Api) -> None:
    """Sign-in attempts count as mutations of the client address."""
    async with client_for(build_app(api.hub, mutations=2)) as client:
        statuses = [
            (await client.post("/admin/login", data={"token": "guess"})).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_sign_in_refuses_a_token_without_a_role(api: Api) -> None:
    """A valid token with no admin role is refused at sign-in: a clear message, no cookie."""
    token = jwt_auth(SECRET).create_token(identifier="nobody", token_expiration=timedelta(hours=1))
    response = await api.client.post("/admin/login", data={"token": token})
    assert response.status_code == 200
    assert "That token has none of the roles SystemAdmin or JobViewer." in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("base_url", "proxies", "headers", "secure"),
    [
        ("http://t", "", {}, False),
        ("https://t", "", {}, True),
        ("http://t", "", {"X-Forwarded-Proto": "https"}, False),  # nobody trusted to say so
        ("http://t", "127.0.0.1", {"X-Forwarded-Proto": "https"}, True),
        ("http://t", "10.0.0.0/8", {"X-Forwarded-Proto": "https"}, False),  # not that proxy
    ],
)
async def test_the_session_cookie_is_secure_over_https(
    api: Api, base_url: str, proxies: str, headers: dict[str, str], secure: bool
) -> None:
    """Secure when the client used https (directly, or as a trusted proxy says); always
    HttpOnly and SameSite=Strict."""
    settings = Settings(url=api.hub.url, jwt_secret=SECRET, trusted_proxies=proxies)
    token = mint_token(SECRET, "alice", "JobViewer", timedelta(hours=1))
    async with _client(create_app(api.hub, settings), base_url=base_url) as client:
        response = await client.post("/admin/login", data={"token": token}, headers=headers)
    cookie = response.headers["set-cookie"].lower()
    assert response.status_code == 302
    assert ("; secure" in cookie, "httponly" in cookie, "samesite=strict" in cookie) == (
        secure,
        True,
        True,
    )


async def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(api: Api) -> None:
    """Without trusted proxies, X-Forwarded-For changes nothing: every request counts as the
    peer. From a trusted proxy, each forwarded client has its own budget and is the client
    the audit trail names."""

    def forwarded(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"{address}, 10.1.2.3"}

    untrusted = build_app(api.hub, mutations=2)
    async with _client(untrusted, client=("10.1.2.3", 9)) as client:
        spoofed = [(await client.post("/api/v1/queue/pause", headers=forwarded(f"203.0.113.{i}")))
                   .status_code for i in range(3)]  # fmt: skip
    settings = Settings(url=api.hub.url, jwt_secret=SECRET, rate_limit_mutations=2,
                        trusted_proxies="10.0.0.0/8, 192.0.2.1")  # fmt: skip
    async with _client(create_app(api.hub, settings), client=("10.9.9.9", 9)) as client:
        proxied = [(await client.post("/api/v1/queue/pause", headers=forwarded(f"198.51.100.{i}")))
                   .status_code for i in range(3)]  # fmt: skip
    assert (spoofed, proxied) == ([401, 401, 429], [401, 401, 401])
    clients = sorted(e.client or "" for e in await api.audit())
    assert clients == ["10.1.2.3", "198.51.100.0", "198.51.100.1", "198.51.100.2"]


def test_a_trusted_proxy_must_be_an_address_or_network() -> None:
    """A typo in HUB_SCHEDULER_TRUSTED_PROXIES stops the settings from loading."""
    with pytest.raises(ValidationError, match="does not appear to be an IPv4 or IPv6"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.internal")


async def test_a_503_says_when_to_retry() -> None:
    """The store not answering is a 503 with Retry-After (probe and API alike)."""
    async with Hub("redis://127.0.0.1:1/0") as hub:
        app = create_app(hub, Settings(url=hub.url, jwt_secret=SECRET))
        async with client_for(app) as client:
            answers = [
                await client.get("/api/v1/ready"),
                await client.get("/api/v1/queue", headers=_token("ops", "JobViewer")),
            ]
    assert [(r.status_code, r.headers.get("retry-after")) for r in answers] == [
        (503, "5"),
        (503, "5"),
    ]
