"""Hostile or absurd input answers a 4xx problem, never a 5xx or a traceback in the log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub_scheduler import Cron, Every
from hub_scheduler.domain.admin import Actor
from hub_scheduler.domain.errors import PayloadError
from hub_scheduler.domain.schedule import Schedule
from hub_scheduler.entrypoints.api.bodies import nested_deeper_than
from tests.api.conftest import Api

BIG = {"blob": "y" * 600_000}  # encoded, over the 512 KiB payload limit


def _nested(depth: int) -> bytes:
    return b'{"name": "syncXero", "payload": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize(
    ("body", "deeper"),
    [
        (b"[]", False),
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b"[" * 50_000, True),
        (b'{"a": [{"b": "[[[[{{{{"}]}', False),  # brackets in strings don't count
        (b'["\\"[[[[[[", [[]]]', False),  # nor after an escaped quote
        (b'{"a": {' * 40 + b"}" * 40 + b"[" * 30, True),  # unbalanced and deep
        (b"", False),
    ],
)
def test_nesting_depth_is_measured_without_decoding(body: bytes, deeper: bool) -> None:
    """The depth check counts brackets outside strings against the limit of 64."""
    assert nested_deeper_than(body) == deeper


async def test_json_nested_past_64_levels_is_a_400_problem(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """JSON nested past 64 levels (50,000 ``[``, 2,000 or 65 levels) is refused before
    decoding: 400 problem, nothing logged as an error; 64 levels are still fine."""
    headers = {**api.admin, "content-type": "application/json"}
    bodies = [b"[" * 50_000, _nested(2_000), _nested(65), _nested(63)]
    with caplog.at_level(logging.ERROR):
        answers = [
            await api.client.post("/api/v1/jobs/trigger", content=body, headers=headers)
            for body in bodies
        ]
    assert [r.status_code for r in answers] == [400, 400, 400, 202]
    for response in answers[:3]:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"] == "the JSON body is nested deeper than 64 levels"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/history?cursor=-1:99999999999999999999",
        "/api/v1/jobs/history?cursor=99999999999999999999999:1",
        "/api/v1/jobs/dlq?cursor=-1:99999999999999999999",
        "/api/v1/jobs/dlq?cursor=99999999999999999999999:1",
        "/api/v1/audit?cursor=-1:99999999999999999999",
        "/api/v1/schedules/syncXero:0/slots?cursor=1:99999999999999999999",
    ],
)
async def test_a_huge_cursor_is_a_400_naming_the_parameter(api: Api, path: str) -> None:
    """A cursor whose numbers no store can hold is the client's error, not a 503."""
    response = await api.client.get(path, headers=api.admin)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["key"] for e in response.json()["errors"]] == ["cursor"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/schedules", {"id": "big", "job": "syncXero", "every_seconds": 1,
                                        "payload": BIG}),
        ("PATCH", "/api/v1/schedules/mine", {"payload": BIG}),
    ],
)  # fmt: skip
async def test_a_schedule_payload_over_the_run_limit_is_refused(
    api: Api, method: str, path: str, body: dict[str, Any]
) -> None:
    """A schedule may not carry a payload its runs could not: 400, the runs' own error,
    audited as failed, and the stored schedule unchanged (the edited one is a runtime
    schedule: code owns declared ones)."""
    mine = Schedule(Every(timedelta(hours=1)), job="syncXero", id="mine")
    await api.hub.schedules.create(mine, api.hub.clock.now())
    before = [s.schedule for s in await api.hub.schedules.list()]
    response = await api.client.request(method, path, headers=api.admin, json=body)
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "payload of job 'syncXero' rejected: it is 600011 bytes encoded; the limit is 524288"
    )
    assert [s.schedule for s in await api.hub.schedules.list()] == before
    [entry] = await api.audit()
    assert entry.outcome == "failed"


async def test_a_schedule_payload_limit_holds_outside_http(api: Api) -> None:
    """The admin service (what the CLI and dashboard call) refuses it too."""
    schedule = Schedule(Every(timedelta(seconds=1)), job="syncXero", id="big", payload=BIG)
    with pytest.raises(PayloadError, match="the limit is 524288"):
        await api.hub.admin.create_schedule(Actor("ops", channel="cli"), schedule)
    assert [s.schedule.id for s in await api.hub.schedules.list()] == ["syncXero:0"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "far", "job": "syncXero", "cron": "@daily", "start": "9999-12-31T23:59:59Z"},
        {"id": "far", "job": "syncXero", "every_seconds": 60, "start": "9999-12-31T23:59:59Z"},
        {"id": "far", "job": "syncXero", "cron": "@daily", "end": "0001-01-01T00:00:00+05:00"},
        {"id": "far", "job": "syncXero", "at": "9999-12-31T23:59:59-05:00"},
    ],
)
async def test_an_instant_at_the_end_of_time_is_a_400_problem(
    api: Api, body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Instants near the ends of the calendar are refused when the schedule is created."""
    with caplog.at_level(logging.ERROR):
        response = await api.client.post("/api/v1/schedules", headers=api.admin, json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "the year must be between 1970 and 8999" in response.text
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("trigger", [Cron("@daily"), Every(timedelta(minutes=1))], ids=str)
async def test_a_schedule_starting_at_the_end_of_time_previews_no_fires(
    api: Api, trigger: Cron | Every
) -> None:
    """Stored by other means than the API, a schedule whose next fire would be past year
    9999 is simply over: its preview is empty, not a 500."""
    start = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    schedule = Schedule(trigger, job="syncXero", id="far", start=start)
    await api.hub.admin.create_schedule(Actor("ops", channel="cli"), schedule)
    response = await api.client.get("/api/v1/schedules/far/preview", headers=api.admin)
    assert response.status_code == 200
    assert response.json() == ([] if isinstance(trigger, Cron) else [
        {"utc": "9999-12-31T23:59:59Z", "local": "9999-12-31T23:59:59Z", "note": None}
    ])  # fmt: skip
