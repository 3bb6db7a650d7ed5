"""Runs over the API: one run's shape, and cancelling a waiting or a running run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.model import ErrorInfo
from hub_scheduler.domain.ports import Failed, Succeeded, WorkerInfo
from hub_scheduler.domain.registry import JobContext
from hub_scheduler.domain.retry import RetryAfter
from hub_scheduler.entrypoints.api.schemas import health_json, run_json
from hub_scheduler.entrypoints.api.security import mint_token
from hub_scheduler.hub import Hub
from tests.api.conftest import SECRET, Api, build_app, client_for


async def test_a_run_is_shown_as_the_cli_prints_it(api: Api) -> None:
    """GET /runs/{id} answers exactly `run_json` of the stored run (one shape for both)."""
    run_id = await api.hub.enqueue("syncXero", {"invoice": 7}, priority="high")
    response = await api.client.get(f"/api/v1/runs/{run_id}", headers=api.viewer)
    assert response.status_code == 200
    assert response.json() == run_json(await api.hub.history.get(run_id))
    assert (response.json()["payload"], response.json()["priority"]) == ({"invoice": 7}, 5)


async def test_a_run_shows_every_attempt_with_its_error_and_retry_delay(api: Api) -> None:
    """GET /runs/{id} lists each attempt: worker, times, outcome, error with traceback and
    the retry delay chosen, oldest first."""
    run_id = await api.hub.enqueue("syncXero")
    queue = api.hub.queue
    [claim] = await queue.claim("w1", 1, timedelta(seconds=30))
    error = ErrorInfo("ValueError", "no", "Traceback (most recent call last):\n...")
    await queue.finish(claim, Failed(error, RetryAfter(timedelta(seconds=2), 2)))
    response = await api.client.get(f"/api/v1/runs/{run_id}", headers=api.viewer)
    [attempt] = response.json()["attempts"]
    assert {k: attempt[k] for k in ("number", "worker", "outcome", "retry_delay_seconds")} == {
        "number": 1,
        "worker": "w1",
        "outcome": "failed",
        "retry_delay_seconds": 2.0,
    }
    assert attempt["error"] == {"type": "ValueError", "message": "no", "traceback": error.traceback}
    assert response.json()["attempts_dropped"] == 0


async def test_queue_health_is_shown_as_the_cli_prints_it(api: Api) -> None:
    """GET /queue answers exactly `health_json` of the admin service's queue health."""
    await api.hub.enqueue("syncXero", delay=timedelta(hours=1))  # no waiting age ticking
    worker = WorkerInfo("w1", "host", 1, 5, 0, api.hub.clock.now())
    await api.hub.presence.worker_seen(worker, timedelta(minutes=1))
    response = await api.client.get("/api/v1/queue", headers=api.viewer)
    body, expected = response.json(), health_json(await api.hub.admin.queue_health())
    # The store's live figures (memory used, clients, ops/s) move between the two reads: the
    # block must be the same, its moving numbers need not be.
    live = {
        "used_memory_bytes",
        "memory_ratio",
        "connected_clients",
        "ops_per_second",
        "connections",
        "table_bytes",
    }
    for health in (body, expected):
        if health.get("backend"):
            health["backend"] = {k: v for k, v in health["backend"].items() if k not in live}
    assert body == expected
    assert (body["delayed"], body["workers"][0]["id"], body["status"]) == (1, "w1", "degraded")


async def test_cancel_a_waiting_run(api: Api) -> None:
    """A queued run and a delayed one are cancelled: 200 with the cancelled run, the run
    stays in history as cancelled, and the action is audited."""
    queued = await api.hub.enqueue("syncXero")
    delayed = await api.hub.enqueue("syncXero", delay=timedelta(hours=1))
    for run_id in (queued, delayed):
        response = await api.client.post(f"/api/v1/runs/{run_id}/cancel", headers=api.admin)
        assert (response.status_code, response.json()["state"]) == (200, "cancelled")
        assert (await api.hub.history.get(run_id)).state == "cancelled"
    assert (await api.hub.queue.snapshot()).waiting == 0
    entries = [(e.action, e.target, e.outcome, e.after) for e in reversed(await api.audit())]
    assert entries == [
        ("run.cancel", queued, "ok", {"state": "cancelled"}),
        ("run.cancel", delayed, "ok", {"state": "cancelled"}),
    ]


async def test_cancel_refuses_an_unknown_and_a_finished_run(api: Api) -> None:
    """Cancel answers 404 for an unknown run and 409 for a finished one, as problems, each
    attempt audited as failed."""
    finished = await api.hub.enqueue("syncXero")
    [claim] = await api.hub.queue.claim("w1", 1, timedelta(seconds=30))
    await api.hub.queue.finish(claim, Succeeded())
    statuses = []
    for run_id in ("missing", finished):
        response = await api.client.post(f"/api/v1/runs/{run_id}/cancel", headers=api.admin)
        assert response.headers["content-type"].startswith("application/problem+json")
        statuses.append(response.status_code)
    assert statuses == [404, 409]
    entries = [(e.target, e.outcome) for e in reversed(await api.audit())]
    assert entries == [("missing", "failed"), (finished, "failed")]


async def test_cancelling_a_running_run_answers_the_request(api: Api) -> None:
    """A running run is asked to stop: 200 with the run still active and the time of the
    request; the audit says who asked."""
    active = await api.hub.enqueue("syncXero")
    await api.hub.queue.claim("w1", 1, timedelta(seconds=30))
    response = await api.client.post(f"/api/v1/runs/{active}/cancel", headers=api.admin)
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["cancel_requested_at"] is not None) == ("active", True)
    [entry] = await api.audit()
    assert (entry.target, entry.outcome, entry.after) == (
        active,
        "ok",
        {"state": "active", "cancel_requested": True},
    )


async def test_bulk_cancel_of_a_job_answers_the_counts(api: Api) -> None:
    """POST /runs/bulk/cancel with a job filter cancels its waiting runs, answers the counts
    and leaves one audit entry."""
    ids = [await api.hub.enqueue("syncXero") for _ in range(3)]
    response = await api.client.post(
        "/api/v1/runs/bulk/cancel", json={"job": "syncXero"}, headers=api.admin
    )
    assert response.status_code == 200
    assert response.json() == {
        "action": "cancel",
        "done": 3,
        "skipped": 0,
        "more": False,
        "new_run_ids": [],
    }
    assert {(await api.hub.history.get(i)).state for i in ids} == {"cancelled"}
    [entry] = await api.audit()
    assert (entry.action, entry.after) == ("runs.cancel", {"done": 3, "skipped": 0, "more": False})


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"job": "nope"}, 404),
        ({"enqueued_after": "2026-01-01T00:00:00"}, 400),  # no time zone
        ({"limit": 0}, 400),
        ({"states": ["bogus"]}, 400),
        ({"surprise": 1}, 400),
    ],
)
async def test_bulk_refuses_bad_selections_as_problems(
    api: Api, body: dict[str, object], status: int
) -> None:
    """An unknown job is a 404; a naive time, a bad limit, state or field a 400 problem."""
    response = await api.client.post("/api/v1/runs/bulk/cancel", json=body, headers=api.admin)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_history_pages_over_a_sharded_backend() -> None:
    """On memory://?shards=3 the history's next_cursor (one cursor per shard) is accepted
    back: every run is listed once across pages; a forged one is a 400 problem."""
    hub = Hub("memory://?shards=3")
    for name in ("a", "b", "c", "d"):
        hub.job(name)(_noop)
    async with hub, client_for(build_app(hub)) as client:
        headers = {
            "Authorization": f"Bearer {mint_token(SECRET, 'v', 'JobViewer', timedelta(hours=1))}"
        }
        ids = {await hub.enqueue(name) for name in ("a", "b", "c", "d") for _ in range(3)}
        seen: list[str] = []
        cursor = None
        while True:
            query = "/api/v1/jobs/history?limit=5" + (f"&cursor={cursor}" if cursor else "")
            page = (await client.get(query, headers=headers)).json()
            seen += [run["id"] for run in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        forged = await client.get("/api/v1/jobs/history?cursor=s1.AAAA", headers=headers)
    assert sorted(seen) == sorted(ids)
    assert forged.status_code == 400
    assert forged.headers["content-type"].startswith("application/problem+json")


async def _noop(ctx: JobContext) -> None:
    del ctx
