"""The overview's jobs table pages: `JOBS_PAGE` jobs by name at a time, next and previous
links that put the page's cursor in the page URL (keeping its other query), and a table
fragment that stays on the page its URL names."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest_asyncio

from hub_scheduler import Cron, Hub
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.entrypoints.api.dashboard.views import JOBS_PAGE
from hub_scheduler.entrypoints.api.security import mint_token
from tests.api.conftest import SECRET, build_app, client_for
from tests.conftest import drop_keys

JOBS = [f"job{n:03d}" for n in range(2 * JOBS_PAGE + 5)]
ROW = re.compile(r'<tr data-job="([^"]+)">')


async def _noop(ctx: JobContext) -> None:
    del ctx


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(store_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in viewer of a hub with two and a bit pages of jobs, registered backwards."""
    async with Hub(store_url, prefix=f"hubtest-api-{uuid.uuid4().hex[:12]}") as hub:
        for name in reversed(JOBS):
            hub.job(name, schedules=[Cron("0 2 * * *")])(_noop)
        await hub.sync_schedules()
        async with client_for(build_app(hub)) as client:
            token = mint_token(SECRET, "viewer", "JobViewer", timedelta(hours=1))
            assert (await client.post("/admin/login", data={"token": token})).status_code == 302
            yield client
        await drop_keys(hub)


def _link(fragment: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', fragment)
    return html.unescape(match.group(1)) if match else None


async def _table_of(browser: httpx.AsyncClient, page_url: str) -> str:
    """The jobs fragment the page at `page_url` loads (the URL in its ``hx-get``)."""
    page = await browser.get(page_url)
    assert page.status_code == 200
    match = re.search(r'<div id="jobs" hx-get="([^"]+)"', page.text)
    assert match is not None
    fragment = await browser.get(html.unescape(match.group(1)))
    assert fragment.status_code == 200
    return fragment.text


async def test_next_links_walk_every_job_once_and_previous_walks_back(
    browser: httpx.AsyncClient,
) -> None:
    """Next from the first page reaches every job once, in name order, on full pages; the
    previous link of each page leads to the page before it."""
    url: str | None = "/admin/?range=7d"
    seen: list[list[str]] = []
    urls: list[str] = []
    while url is not None:
        table = await _table_of(browser, url)
        seen.append(ROW.findall(table))
        urls.append(url)
        previous = _link(table, "prev")
        if len(urls) > 1:
            assert previous is not None
            assert ROW.findall(await _table_of(browser, previous)) == seen[-2]
        else:
            assert previous is None
        url = _link(table, "next")
        if url is not None:
            assert "range=7d" in url
    assert [len(page) for page in seen] == [JOBS_PAGE, JOBS_PAGE, 5]
    assert [name for page in seen for name in page] == JOBS


async def test_a_bad_jobs_cursor_is_refused(browser: httpx.AsyncClient) -> None:
    """A cursor the dashboard did not hand out answers 400, not a table."""
    response = await browser.get("/admin/fragments/jobs", params={"cursor": "k1.____"})
    assert response.status_code == 400
