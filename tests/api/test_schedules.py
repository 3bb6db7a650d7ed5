"""Schedules through the API: code owns the schedules declared on jobs (pause and resume
only, edits and deletes are a 409 saying why), runtime ones are fully editable."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

DECLARED = "/api/v1/schedules/syncXero:0"


def _problem(body: dict[str, Any], status: int) -> bool:
    return body["status"] == status and {"type", "title", "detail"} <= set(body)


async def test_schedule_views_say_where_each_schedule_comes_from(api: Api) -> None:
    """Each schedule view has origin "code" (declared on a job) or "runtime" (created)."""
    created = await api.client.post(
        "/api/v1/schedules",
        headers=api.admin,
        json={"id": "nightly", "job": "syncXero", "cron": "0 3 * * *"},
    )
    assert (created.status_code, created.json()["origin"]) == (201, "runtime")
    listed = (await api.client.get("/api/v1/schedules", headers=api.viewer)).json()
    assert {s["id"]: s["origin"] for s in listed} == {"nightly": "runtime", "syncXero:0": "code"}


async def test_editing_or_deleting_a_declared_schedule_is_a_409_that_says_why(api: Api) -> None:
    """PATCH and DELETE of a schedule declared in code answer 409 problem+json explaining that
    code owns it, and change nothing."""
    patched = await api.client.patch(DECLARED, headers=api.admin, json={"cron": "*/5 * * * *"})
    deleted = await api.client.delete(DECLARED, headers=api.admin)
    for response in (patched, deleted):
        assert response.status_code == 409
        assert response.headers["content-type"].startswith("application/problem+json")
        assert _problem(response.json(), 409)
        assert "declared in code" in response.json()["detail"]
        assert "paused" in response.json()["detail"]
    [state] = (await api.client.get("/api/v1/schedules", headers=api.viewer)).json()
    assert (state["id"], state["description"]) == (
        "syncXero:0",
        "At 02:00 every day (Australia/Sydney)",
    )


async def test_a_declared_schedule_can_be_paused_and_resumed(api: Api) -> None:
    """Pause and resume work on a declared schedule; the pause survives the next sync."""
    paused = await api.client.post(f"{DECLARED}/pause", headers=api.admin)
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    await api.hub.sync_schedules()  # what the next scheduler start does
    [state] = (await api.client.get("/api/v1/schedules", headers=api.viewer)).json()
    assert state["paused"] is True
    resumed = await api.client.post(f"{DECLARED}/resume", headers=api.admin)
    assert resumed.json()["paused"] is False


async def test_a_duplicate_schedule_id_is_a_409(api: Api) -> None:
    """Creating a schedule under an id that exists is a conflict, not bad input."""
    body = {"id": "nightly", "job": "syncXero", "cron": "0 3 * * *"}
    assert (await api.client.post("/api/v1/schedules", headers=api.admin, json=body)).is_success
    again = await api.client.post("/api/v1/schedules", headers=api.admin, json=body)
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


async def test_runtime_schedules_are_fully_editable(api: Api) -> None:
    """A runtime schedule can be edited (a bad value is a 400) and deleted."""
    body = {"id": "nightly", "job": "syncXero", "cron": "0 3 * * *"}
    await api.client.post("/api/v1/schedules", headers=api.admin, json=body)
    bad = await api.client.patch(
        "/api/v1/schedules/nightly", headers=api.admin, json={"timezone": "Mars/Base"}
    )
    assert (bad.status_code, "unknown time zone" in bad.json()["detail"]) == (400, True)
    edited = await api.client.patch(
        "/api/v1/schedules/nightly", headers=api.admin, json={"cron": "*/5 * * * *"}
    )
    assert (edited.status_code, edited.json()["description"]) == (
        200,
        "Every fifth minute of every hour (UTC)",
    )
    deleted = await api.client.delete("/api/v1/schedules/nightly", headers=api.admin)
    assert deleted.status_code == 200
