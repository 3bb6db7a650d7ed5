"""Every admin route: who may call it, and every error as problem+json."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hub_scheduler.entrypoints.api.routes import drain_audits
from tests.api.conftest import Api

# (method, path, body) for every route but the public health checks.
READS = [
    ("GET", "/api/v1/jobs", None),
    ("GET", "/api/v1/jobs/syncXero", None),
    ("GET", "/api/v1/queue", None),
    ("GET", "/api/v1/jobs/history", None),
    ("GET", "/api/v1/jobs/metrics", None),
    ("GET", "/api/v1/runs/missing", None),
    ("GET", "/api/v1/jobs/dlq", None),
    ("GET", "/api/v1/schedules", None),
    ("GET", "/api/v1/schedules/syncXero:0/preview", None),
    ("GET", "/api/v1/schedules/syncXero:0/slots", None),
    ("GET", "/api/v1/audit", None),
    ("GET", "/api/v1/metrics", None),
]
MUTATIONS = [
    ("POST", "/api/v1/jobs/trigger", {"name": "syncXero"}),
    ("POST", "/api/v1/jobs/syncXero/trigger", {}),
    ("POST", "/api/v1/jobs/syncXero/pause", None),
    ("POST", "/api/v1/jobs/syncXero/resume", None),
    ("POST", "/api/v1/queue/pause", None),
    ("POST", "/api/v1/queue/resume", None),
    ("POST", "/api/v1/jobs/clean", {"older_than_days": 90}),
    ("POST", "/api/v1/jobs/dlq/retry-all", None),
    ("POST", "/api/v1/jobs/dlq/missing/retry", None),
    ("DELETE", "/api/v1/jobs/dlq/missing", None),
    ("DELETE", "/api/v1/jobs/dlq", None),
    ("POST", "/api/v1/schedules", {"id": "nightly", "job": "syncXero", "cron": "@daily"}),
    ("PATCH", "/api/v1/schedules/syncXero:0", {"cron": "0 3 * * *"}),
    ("POST", "/api/v1/schedules/syncXero:0/pause", None),
    ("POST", "/api/v1/schedules/syncXero:0/resume", None),
    ("DELETE", "/api/v1/schedules/syncXero:0", None),
]
ROUTES = READS + MUTATIONS


async def _call(api: Api, route: tuple[str, str, Any], headers: dict[str, str]) -> Any:
    method, path, body = route
    return await api.client.request(method, path, headers=headers, json=body)


def _is_problem(response: Any) -> bool:
    body = response.json()
    return (
        response.headers["content-type"].startswith("application/problem+json")
        and body["status"] == response.status_code
        and {"type", "title", "detail"} <= set(body)
    )


async def test_every_route_is_in_the_matrix(api: Api) -> None:
    """The matrix covers exactly the operations the OpenAPI schema lists (none escapes it)."""
    schema = (await api.client.get("/schema/openapi.json")).json()
    operations = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if not path.endswith(("/health", "/ready"))
    }
    covered = set()
    for method, path, _ in ROUTES:
        matches = {
            (m, template)
            for m, template in operations
            if m == method and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path)
        }
        covered |= matches
    assert covered == operations


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
async def test_anonymous_and_expired_get_401_problem(api: Api, route: tuple[str, str, Any]) -> None:
    """No token, or an expired one: 401 problem+json, whatever the route."""
    for headers in ({}, api.expired, {"Authorization": "Bearer not-a-jwt"}):
        response = await _call(api, route, headers)
        assert response.status_code == 401
        assert _is_problem(response)


@pytest.mark.parametrize("route", MUTATIONS, ids=lambda r: f"{r[0]} {r[1]}")
async def test_viewer_cannot_mutate_and_is_audited(api: Api, route: tuple[str, str, Any]) -> None:
    """A JobViewer gets 403 problem+json on every mutation, and the attempt is audited."""
    response = await _call(api, route, api.viewer)
    assert response.status_code == 403
    assert _is_problem(response)
    await drain_audits()
    [entry] = (await api.client.get("/api/v1/audit", headers=api.viewer)).json()["items"]
    assert (entry["actor"], entry["outcome"], entry["roles"]) == ("bob", "refused", ["JobViewer"])


@pytest.mark.parametrize("route", READS, ids=lambda r: f"{r[0]} {r[1]}")
async def test_viewer_and_admin_can_read(api: Api, route: tuple[str, str, Any]) -> None:
    """Both roles may read; a missing thing is a 404 problem, never a 5xx."""
    for headers in (api.viewer, api.admin):
        response = await _call(api, route, headers)
        assert response.status_code in (200, 404), response.text
        if response.status_code == 404:
            assert _is_problem(response)


@pytest.mark.parametrize("route", MUTATIONS, ids=lambda r: f"{r[0]} {r[1]}")
async def test_admin_can_mutate(api: Api, route: tuple[str, str, Any]) -> None:
    """SystemAdmin may call every mutation: success, or a 404 problem for a missing id."""
    response = await _call(api, route, api.admin)
    assert response.status_code in (200, 201, 202, 404), response.text
    if response.status_code == 404:
        assert _is_problem(response)


async def test_health_needs_no_token(api: Api) -> None:
    """Liveness and readiness are public."""
    assert (await api.client.get("/api/v1/health")).json() == {"status": "ok"}
    assert (await api.client.get("/api/v1/ready")).json() == {"status": "ready"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("POST", "/api/v1/jobs/trigger", {"name": "nope"}, 404, "job 'nope' not found"),
        ("POST", "/api/v1/jobs/trigger", {"name": "syncXero", "x": 1}, 400, "Validation failed"),
        ("POST", "/api/v1/jobs/trigger", {"name": "syncXero", "priority": 3}, 400, "Validation"),
        ("POST", "/api/v1/schedules", {"id": "a", "job": "syncXero", "cron": "*/0 * * * *"}, 400,
         "bad minute field '*/0'"),
        ("POST", "/api/v1/schedules", {"id": "a", "job": "syncXero", "cron": "0 8 * * *",
                                       "timezone": "Mars/Base"}, 400, "unknown time zone"),
        ("POST", "/api/v1/schedules", {"id": "syncXero:0", "job": "syncXero", "cron": "@daily"},
         400, "already exists"),
        ("GET", "/api/v1/jobs/history?limit=0", None, 400, "Validation failed"),
        ("GET", "/api/v1/jobs/history?status=bogus", None, 400, "Validation failed"),
        ("PUT", "/api/v1/jobs", None, 405, "Method Not Allowed"),
        ("GET", "/api/v1/nothing-here", None, 404, "Not Found"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_precise_problem(  # noqa: PLR0917 - one table row per call
    api: Api, method: str, path: str, body: Any, status: int, detail: str
) -> None:
    """Bad input gets the right status and a problem+json saying what is wrong."""
    response = await api.client.request(method, path, headers=api.admin, json=body)
    assert response.status_code == status
    assert _is_problem(response)
    assert detail in response.json()["detail"]
