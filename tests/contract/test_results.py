"""Results and progress on every backend: what a run returned and how far it got read back
as stored, the latest report wins, and results are bounded like payloads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub_scheduler.domain.errors import ResultError
from hub_scheduler.domain.model import Progress, StoredResult
from hub_scheduler.domain.ports import EnqueueRequest
from tests.contract.conftest import PAYLOAD_LIMIT, Subject


async def _run(backend: Subject) -> str:
    [enqueued] = await backend.queue.enqueue([EnqueueRequest("job")])
    return enqueued.run_id


async def test_a_result_reads_back_and_a_later_one_replaces_it(backend: Subject) -> None:
    """A stored value (any JSON) reads back with when it was stored; storing again replaces
    it; a run without one has None."""
    run_id, other = await _run(backend), await _run(backend)
    value = {"total": 3, "items": ["a", None, 1.5], "ok": True}
    await backend.results.set_result(run_id, value)
    assert await backend.results.result(run_id) == StoredResult(value, backend.clock.now())
    backend.clock.advance(5)
    await backend.results.set_result(run_id, [1, "two"])
    assert await backend.results.result(run_id) == StoredResult([1, "two"], backend.clock.now())
    assert await backend.results.result(other) is None


async def test_results_are_bounded_like_payloads(backend: Subject) -> None:
    """A value over the payload limit, or not JSON, raises `ResultError` and stores nothing."""
    run_id = await _run(backend)
    with pytest.raises(ResultError, match="the limit is"):
        await backend.results.set_result(run_id, "x" * PAYLOAD_LIMIT)
    with pytest.raises(ResultError, match="not JSON-encodable"):
        await backend.results.set_result(run_id, {"when": timedelta(1)})
    assert await backend.results.result(run_id) is None


async def test_the_latest_progress_report_wins(backend: Subject) -> None:
    """Progress reads back as reported; a later report replaces it; none is None."""
    run_id, other = await _run(backend), await _run(backend)
    first = Progress(backend.clock.now(), 0.25, "a quarter")
    await backend.results.set_progress(run_id, first)
    assert await backend.results.progress(run_id) == first
    backend.clock.advance(1)
    later = Progress(backend.clock.now(), None, "done soon", "RETRY", {"step": [3, 4]})
    await backend.results.set_progress(run_id, later)
    assert await backend.results.progress(run_id) == later
    assert await backend.results.progress(other) is None


async def test_progress_and_result_live_side_by_side(backend: Subject) -> None:
    """A run keeps its last progress report and its result, each under its own read."""
    run_id = await _run(backend)
    report = Progress(backend.clock.now(), 1.0, "finished")
    await backend.results.set_progress(run_id, report)
    await backend.results.set_result(run_id, 42)
    assert (await backend.results.progress(run_id), await backend.results.result(run_id)) == (
        report,
        StoredResult(42, backend.clock.now()),
    )
