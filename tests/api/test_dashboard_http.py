"""The dashboard over HTTP: sign-in, roles, CSRF and escaping (the browser test covers the UI)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import httpx
import pytest

from hub_scheduler.entrypoints.api.app import create_app
from hub_scheduler.entrypoints.api.security import mint_token
from hub_scheduler.entrypoints.settings import Settings
from tests.api.conftest import SECRET, Api


@contextlib.asynccontextmanager
async def _session(api: Api, role: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser-like client signed in with `role`, and the page's CSRF value."""
    app = create_app(api.hub, Settings(redis_url=api.hub.url, jwt_secret=SECRET))
    transport = httpx.ASGITransport(app=cast("Any", app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client, await _sign_in(client, role)


async def _sign_in(client: httpx.AsyncClient, role: str) -> str:
    token = mint_token(SECRET, f"{role.lower()}-user", role, timedelta(hours=1))
    signed_in = await client.post("/admin/login", data={"token": token})
    assert signed_in.status_code == 302
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    assert "samesite=strict" in signed_in.headers["set-cookie"].lower()
    page = await client.get("/admin/")
    match = re.search(r'"X-Hub-CSRF": "([0-9a-f]+)"', page.text)
    assert match is not None
    return match.group(1)


async def test_signed_out_visitors_go_to_the_login_page(api: Api) -> None:
    """Without a session the dashboard redirects to sign-in; a bad token is refused there."""
    response = await api.client.get("/admin/")
    assert (response.status_code, response.headers["location"]) == (302, "/admin/login")
    refused = await api.client.post("/admin/login", data={"token": "not-a-token"})
    assert "That token is not valid" in refused.text


async def test_viewer_sees_no_action_buttons_and_cannot_act(api: Api) -> None:
    """A JobViewer reads the jobs fragment without buttons; posting an action is refused."""
    async with _session(api, "JobViewer") as (client, csrf):
        jobs = await client.get("/admin/fragments/jobs")
        assert "syncXero" in jobs.text
        assert "Run now" not in jobs.text
        refused = await client.post(
            "/admin/actions/queue/pause", headers={"X-Hub-CSRF": csrf, "HX-Request": "true"}
        )
        assert refused.status_code == 403
    assert not (await api.hub.queue.snapshot()).paused


@pytest.mark.parametrize("header", [None, "0" * 64])
async def test_actions_need_the_csrf_header(api: Api, header: str | None) -> None:
    """An admin's cookie alone (as a cross-site form would send it) cannot act."""
    async with _session(api, "SystemAdmin") as (client, _):
        headers = {"X-Hub-CSRF": header} if header else {}
        refused = await client.post("/admin/actions/queue/pause", headers=headers)
        assert refused.status_code == 403
    assert not (await api.hub.queue.snapshot()).paused


async def test_admin_action_works_and_is_audited(api: Api) -> None:
    """With session and CSRF header an admin pauses the queue, and the audit trail says so."""
    async with _session(api, "SystemAdmin") as (client, csrf):
        done = await client.post("/admin/actions/queue/pause", headers={"X-Hub-CSRF": csrf})
        assert (done.status_code, done.headers["hx-trigger"]) == (200, "refresh")
        jobs = await client.get("/admin/fragments/jobs")
        assert "Run now" in jobs.text
    assert (await api.hub.queue.snapshot()).paused
    [entry] = (await api.client.get("/api/v1/audit", headers=api.viewer)).json()["items"]
    assert (entry["actor"], entry["action"]) == ("systemadmin-user", "dashboard.queue.pause")


async def test_error_text_is_escaped(api: Api) -> None:
    """A hostile name in a path comes back escaped, never as markup."""
    async with _session(api, "SystemAdmin") as (client, csrf):
        response = await client.post(
            "/admin/actions/jobs/<img src=x>/trigger", headers={"X-Hub-CSRF": csrf}
        )
    assert response.status_code == 404
    assert "<img" not in response.text
    assert "&lt;img" in response.text
