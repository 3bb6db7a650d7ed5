"""Triggering with an idempotency key says when nothing new was enqueued; history filters
runs whose last attempt failed."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

from hub_scheduler.domain.model import ErrorInfo, RunState
from hub_scheduler.domain.ports import Failed
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from hub_scheduler.entrypoints.api.controllers.runs import HistoryStatus
from tests.api.conftest import Api


async def test_a_repeated_idempotent_trigger_says_duplicate_with_the_first_run(api: Api) -> None:
    """The second trigger with the same key answers 202, the first run's id and
    duplicate: true; the first says duplicate: false."""
    body = {"idempotency_key": "invoice-42"}
    first = await api.client.post("/api/v1/jobs/syncXero/trigger", headers=api.admin, json=body)
    again = await api.client.post(
        "/api/v1/jobs/trigger", headers=api.admin, json={"name": "syncXero", **body}
    )
    assert (first.status_code, again.status_code) == (202, 202)
    run_id = first.json()["run_id"]
    assert first.json() == {"run_id": run_id, "duplicate": False}
    assert again.json() == {"run_id": run_id, "duplicate": True}
    [repeat, _] = await api.audit()
    assert repeat.after == {"run_id": run_id, "duplicate": True}


async def test_history_status_failed_lists_runs_whose_last_attempt_failed(api: Api) -> None:
    """?status=failed lists dead runs and runs waiting for a retry, not succeeded or queued."""
    dead, retrying, _waiting = [await api.hub.enqueue("flaky") for _ in range(3)]
    claims = {c.run.id: c for c in await api.hub.queue.claim("w1", 2, timedelta(seconds=30))}
    error = ErrorInfo("ValueError", "no")
    await api.hub.queue.finish(claims[dead], Failed(error, GiveUp(1)))
    await api.hub.queue.finish(claims[retrying], Failed(error, RetryAfter(timedelta(minutes=5), 2)))
    page = await api.client.get("/api/v1/jobs/history?status=failed", headers=api.viewer)
    assert page.status_code == 200
    assert sorted((r["id"], r["state"]) for r in page.json()["items"]) == sorted(
        [(dead, "dead"), (retrying, "retry_scheduled")]
    )


def test_the_history_filter_offers_every_run_state() -> None:
    """Every run state can be filtered on, besides `failed`."""
    assert set(get_args(HistoryStatus)) == {s.value for s in RunState} | {"failed"}
