"""Every admin route: who may call it, what each role gets, what the audit trail records,
and every error as problem+json."""

from __future__ import annotations

import re
from typing import Any

import attrs
import httpx
import pytest

from tests.api.conftest import Api


@attrs.frozen
class Route:
    """One call of the matrix: what SystemAdmin gets, and the action a mutation audits."""

    method: str
    path: str
    body: Any = None
    status: int = 200
    action: str | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


# Every route but the public health checks, called on a store holding only the declared
# schedule syncXero:0 (so "missing" ids are 404s).
READS = [
    Route("GET", "/api/v1/jobs"),
    Route("GET", "/api/v1/jobs/syncXero"),
    Route("GET", "/api/v1/queue"),
    Route("GET", "/api/v1/jobs/history"),
    Route("GET", "/api/v1/jobs/metrics"),
    Route("GET", "/api/v1/runs/missing", status=404),
    Route("GET", "/api/v1/jobs/dlq"),
    Route("GET", "/api/v1/schedules"),
    Route("GET", "/api/v1/schedules/syncXero:0/preview"),
    Route("GET", "/api/v1/schedules/syncXero:0/slots"),
    Route("GET", "/api/v1/audit"),
    Route("GET", "/api/v1/metrics"),
    Route("GET", "/api/v1/alerts"),
    Route("GET", "/api/v1/workflows"),
    Route("GET", "/api/v1/workflows/wf_0123456789abcdef", status=404),
]
MUTATIONS = [
    Route("POST", "/api/v1/jobs/trigger", {"name": "syncXero"}, 202, "job.trigger"),
    Route("POST", "/api/v1/jobs/syncXero/trigger", {}, 202, "job.trigger"),
    Route("POST", "/api/v1/jobs/syncXero/pause", None, 200, "job.pause"),
    Route("POST", "/api/v1/jobs/syncXero/resume", None, 200, "job.resume"),
    Route("POST", "/api/v1/queue/pause", None, 200, "queue.pause"),
    Route("POST", "/api/v1/queue/resume", None, 200, "queue.resume"),
    Route("POST", "/api/v1/runs/missing/cancel", None, 404, "run.cancel"),
    Route("POST", "/api/v1/workflows/missing/cancel", None, 404, "workflow.cancel"),
    Route("POST", "/api/v1/runs/bulk/cancel", {"job": "syncXero"}, 200, "runs.cancel"),
    Route("POST", "/api/v1/runs/bulk/retry", {"job": "syncXero"}, 200, "runs.retry"),
    Route("POST", "/api/v1/runs/bulk/delete", {"run_ids": ["missing"]}, 200, "runs.delete"),
    Route("POST", "/api/v1/jobs/clean", {"older_than_days": 90}, 200, "history.clean"),
    Route("POST", "/api/v1/jobs/dlq/retry-all", None, 200, "dlq.retry_all"),
    Route("POST", "/api/v1/jobs/dlq/missing/retry", None, 404, "dlq.retry"),
    Route("DELETE", "/api/v1/jobs/dlq/missing", None, 404, "dlq.delete"),
    Route("DELETE", "/api/v1/jobs/dlq", None, 200, "dlq.purge"),
    Route("POST", "/api/v1/schedules", {"id": "nightly", "job": "syncXero", "cron": "@daily"},
          201, "schedule.create"),
    # syncXero:0 is declared in code: code owns it, so edits and deletes are a 409.
    Route("PATCH", "/api/v1/schedules/syncXero:0", {"cron": "0 3 * * *"}, 409, "schedule.update"),
    Route("POST", "/api/v1/schedules/syncXero:0/pause", None, 200, "schedule.pause"),
    Route("POST", "/api/v1/schedules/syncXero:0/resume", None, 200, "schedule.resume"),
    Route("DELETE", "/api/v1/schedules/syncXero:0", None, 409, "schedule.delete"),
    Route("POST", "/api/v1/alerts/mute", {"target": "run_dead", "minutes": 5}, 200, "alert.mute"),
]  # fmt: skip
ROUTES = READS + MUTATIONS


async def _call(api: Api, route: Route, headers: dict[str, str]) -> httpx.Response:
    return await api.client.request(route.method, route.path, headers=headers, json=route.body)


def _is_problem(response: httpx.Response) -> bool:
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
    for route in ROUTES:
        covered |= {
            (m, template)
            for m, template in operations
            if m == route.method
            and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), route.path)
        }
    assert covered == operations


@pytest.mark.parametrize("route", READS, ids=str)
async def test_anonymous_and_expired_reads_get_401_problem(api: Api, route: Route) -> None:
    """No token, an expired one or garbage: 401 problem+json on every read (not audited)."""
    for headers in ({}, api.expired, {"Authorization": "Bearer not-a-jwt"}):
        response = await _call(api, route, headers)
        assert response.status_code == 401
        assert _is_problem(response)
    assert await api.audit() == []


@pytest.mark.parametrize("route", MUTATIONS, ids=str)
async def test_anonymous_and_expired_mutations_get_401_and_are_audited(
    api: Api, route: Route
) -> None:
    """No token, an expired one or garbage: 401 problem+json on every mutation; the attempts
    (all from one client address) are audited once, as refused by an anonymous actor under
    the action it tried."""
    for headers in ({}, api.expired, {"Authorization": "Bearer not-a-jwt"}):
        response = await _call(api, route, headers)
        assert response.status_code == 401
        assert _is_problem(response)
    entries = [(e.actor, e.action, e.outcome, e.channel) for e in await api.audit()]
    assert entries == [("anonymous", route.action, "refused", "api")]


async def test_a_401_carries_the_bearer_challenge(api: Api) -> None:
    """Without a token the challenge names the scheme and realm; with a bad or expired one
    it says ``invalid_token`` (RFC 6750); a viewer's 403 says ``insufficient_scope``."""
    challenges = [
        (await api.client.get("/api/v1/jobs", headers=headers)).headers.get("www-authenticate")
        for headers in ({}, api.expired, {"Authorization": "Bearer not-a-jwt"}, api.viewer)
    ]
    refused = await api.client.post("/api/v1/queue/pause", headers=api.viewer)
    assert challenges == [
        'Bearer realm="hub_scheduler"',
        'Bearer realm="hub_scheduler", error="invalid_token"',
        'Bearer realm="hub_scheduler", error="invalid_token"',
        None,
    ]
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="hub_scheduler", error="insufficient_scope"'
    )


@pytest.mark.parametrize("route", MUTATIONS, ids=str)
async def test_viewer_cannot_mutate_and_is_audited(api: Api, route: Route) -> None:
    """A JobViewer gets 403 problem+json on every mutation, and the attempt is audited."""
    response = await _call(api, route, api.viewer)
    assert response.status_code == 403
    assert _is_problem(response)
    [entry] = await api.audit()
    assert (entry.actor, entry.roles, entry.action, entry.outcome, entry.channel) == (
        "bob",
        ("JobViewer",),
        route.action,
        "refused",
        "api",
    )
    assert entry.detail == "the SystemAdmin role is required"


@pytest.mark.parametrize("route", READS, ids=str)
async def test_viewer_and_admin_can_read(api: Api, route: Route) -> None:
    """Both roles may read; a missing thing is a 404 problem, never a 5xx; reads are not
    audited."""
    for headers in (api.viewer, api.admin):
        response = await _call(api, route, headers)
        assert response.status_code == route.status, response.text
        if route.status == 404:
            assert _is_problem(response)
    assert await api.audit() == []


@pytest.mark.parametrize("route", MUTATIONS, ids=str)
async def test_admin_can_mutate_and_each_mutation_is_audited_once(api: Api, route: Route) -> None:
    """SystemAdmin may call every mutation (a missing id is a 404 problem); each call writes
    exactly one audit entry: ok, or failed with the reason."""
    response = await _call(api, route, api.admin)
    assert response.status_code == route.status, response.text
    [entry] = await api.audit()
    outcome = "failed" if route.status >= 400 else "ok"
    assert (entry.actor, entry.action, entry.outcome, entry.channel) == (
        "alice",
        route.action,
        outcome,
        "api",
    )
    if route.status >= 400:
        assert _is_problem(response)
        assert entry.detail == response.json()["detail"]


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
         409, "already exists"),
        ("PATCH", "/api/v1/schedules/syncXero:0", {"timezone": "Mars/Base"}, 409,
         "declared in code"),
        ("GET", "/api/v1/jobs/history?limit=0", None, 400, "Validation failed"),
        ("GET", "/api/v1/jobs/history?status=bogus", None, 400, "Validation failed"),
        ("GET", "/api/v1/jobs/history?job=nope", None, 404, "job 'nope' not found"),
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
