"""``/jobs``, ``/jobs/metrics`` and ``/schedules`` answer a page at a time: the body stays an
array, the next page is named by ``X-Next-Cursor`` and an RFC 8288 ``Link``; following them
lists everything once."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from hub_scheduler import Cron, Hub
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.entrypoints.api.security import mint_token
from tests.api.conftest import SECRET, bearer, build_app, client_for
from tests.conftest import drop_keys

JOBS = [f"job{n:02d}" for n in range(7)]
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


async def _noop(ctx: JobContext) -> None:
    del ctx


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(store_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A viewer's client on a hub of seven jobs (registered out of order), one schedule each."""
    async with Hub(store_url, prefix=f"hubtest-api-{uuid.uuid4().hex[:12]}") as hub:
        for name in reversed(JOBS):
            hub.job(name, schedules=[Cron("0 2 * * *")])(_noop)
        await hub.sync_schedules()
        await hub.enqueue("job03")
        token = mint_token(SECRET, "bob", "JobViewer", timedelta(hours=1))
        async with client_for(build_app(hub)) as http:
            http.headers.update(bearer(token))
            yield http
        await drop_keys(hub)


async def _follow(client: httpx.AsyncClient, url: str) -> tuple[list[Any], int]:
    """Every item of a paged listing by its Link headers, and how many pages it took."""
    items: list[Any] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), list)
        items += response.json()
        pages += 1
        link = response.headers.get("link")
        cursor = response.headers.get("x-next-cursor")
        assert (link is None) == (cursor is None)
        next_url = None
        if link is not None:
            match = LINK.match(link)
            assert match, link
            next_url = match["url"]
            assert httpx.URL(next_url).params["cursor"] == cursor
    return items, pages


@pytest.mark.parametrize(
    ("path", "key"),
    [("/api/v1/jobs", "name"), ("/api/v1/jobs/metrics", "job"), ("/api/v1/schedules", "id")],
)
async def test_following_the_links_lists_everything_once_in_order(
    client: httpx.AsyncClient, path: str, key: str
) -> None:
    """Pages of 3 add up to the whole listing, by name (or id), each item once."""
    items, pages = await _follow(client, f"{path}?limit=3")
    expected = [f"{job}:0" for job in JOBS] if key == "id" else JOBS
    assert ([item[key] for item in items], pages) == (expected, 3)
    whole = (await client.get(path)).json()
    assert whole == items
    assert "link" not in (await client.get(path)).headers


async def test_a_page_of_jobs_carries_their_schedules_and_last_run(
    client: httpx.AsyncClient,
) -> None:
    """A job's summary on a later page is as complete as on the first."""
    items, _ = await _follow(client, "/api/v1/jobs?limit=2")
    by_name = {item["name"]: item for item in items}
    assert [s["id"] for s in by_name["job03"]["schedules"]] == ["job03:0"]
    assert by_name["job03"]["last_run"] is not None
    assert by_name["job04"]["last_run"] is None


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/metrics", "/api/v1/schedules"])
@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=x",
        "cursor=nonsense",
        "cursor=k1.",
        "cursor=k1.%2F%2F",
        "cursor=k1.____",
    ],
)
async def test_a_bad_limit_or_cursor_is_a_400_problem(
    client: httpx.AsyncClient, path: str, query: str
) -> None:
    """Limits outside 1 to 500 and cursors not handed out answer 400 problem+json."""
    response = await client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 400
