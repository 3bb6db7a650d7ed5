"""The dashboard over HTTP: sign-in, roles, CSRF, escaping, and its actions audited like the
API's (the browser test covers the UI)."""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import attrs
import httpx
import pytest

from hub_scheduler import Cron, Every, Hub, Once, Schedule
from hub_scheduler.domain.admin import Actor
from hub_scheduler.domain.alerts import AlertPolicy
from hub_scheduler.domain.histogram import bucket_of, representative
from hub_scheduler.domain.model import ErrorInfo, RunState
from hub_scheduler.domain.ports import AuditEntry, EnqueueRequest, Failed, Succeeded
from hub_scheduler.domain.retry import GiveUp, RetryAfter
from hub_scheduler.entrypoints.api.dashboard.formatting import duration
from hub_scheduler.entrypoints.api.security import mint_token
from hub_scheduler.testing import FakeClock, RecordingNotifier, hub_for_tests
from tests.api.conftest import SECRET, Api, build_app, client_for


@attrs.frozen
class Browser:
    """A browser-like client signed in to the dashboard, and the page's CSRF value."""

    client: httpx.AsyncClient
    csrf: str

    async def act(self, action: str) -> httpx.Response:
        """Press a button: POST an action with the CSRF header, as htmx does."""
        return await self.client.post(
            f"/admin/actions/{action}", headers={"X-Hub-CSRF": self.csrf, "HX-Request": "true"}
        )


@contextlib.asynccontextmanager
async def _session(api: Api, role: str) -> AsyncIterator[Browser]:
    """A client of the module's app with a cookie jar of its own, signed in with `role`."""
    async with client_for(api.app) as client:
        yield Browser(client, await _sign_in(client, role))


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


async def _dead_letters(api: Api, n: int) -> list[str]:
    """`n` runs of `flaky` that failed for good (on an empty queue); their ids."""
    run_ids = [await api.hub.enqueue("flaky") for _ in range(n)]
    claims = await api.hub.queue.claim("w1", n, timedelta(seconds=30))
    for claim in claims:
        await api.hub.queue.finish(claim, Failed(ErrorInfo("ValueError", "no"), GiveUp(1)))
    assert sorted(c.run.id for c in claims) == sorted(run_ids)
    return run_ids


async def test_signed_out_visitors_go_to_the_login_page(api: Api) -> None:
    """Without a session the dashboard redirects to sign-in; a bad token is refused there."""
    response = await api.client.get("/admin/")
    assert (response.status_code, response.headers["location"]) == (302, "/admin/login")
    refused = await api.client.post("/admin/login", data={"token": "not-a-token"})
    assert "That token is not valid" in refused.text


async def test_viewer_sees_no_action_buttons_and_cannot_act(api: Api) -> None:
    """A JobViewer reads the jobs fragment without buttons; posting an action is refused."""
    async with _session(api, "JobViewer") as browser:
        jobs = await browser.client.get("/admin/fragments/jobs")
        assert "syncXero" in jobs.text
        assert "Run now" not in jobs.text
        refused = await browser.act("queue/pause")
        assert refused.status_code == 403
    assert not (await api.hub.queue.snapshot()).paused


@pytest.mark.parametrize("header", [None, "0" * 64])
async def test_actions_need_the_csrf_header(api: Api, header: str | None) -> None:
    """An admin's cookie alone (as a cross-site form would send it) cannot act."""
    async with _session(api, "SystemAdmin") as browser:
        headers = {"X-Hub-CSRF": header} if header else {}
        refused = await browser.client.post("/admin/actions/queue/pause", headers=headers)
        assert refused.status_code == 403
    assert not (await api.hub.queue.snapshot()).paused


async def test_refused_dashboard_actions_are_audited(api: Api) -> None:
    """Without a session (401), without the CSRF header (403) and as a viewer (403), an
    action is refused, and each refusal is audited under the action's name."""
    no_session = await api.client.post(
        "/admin/actions/jobs/syncXero/pause", headers={"HX-Request": "true"}
    )
    async with _session(api, "SystemAdmin") as admin:
        no_csrf = await admin.client.post("/admin/actions/queue/pause")
    async with _session(api, "JobViewer") as viewer:
        not_allowed = await viewer.act("dlq/retry-all")
    statuses = [r.status_code for r in (no_session, no_csrf, not_allowed)]
    assert statuses == [401, 403, 403]
    entries = [(e.actor, e.action, e.target, e.outcome, e.channel, e.detail)
               for e in reversed(await api.audit())]  # fmt: skip
    assert entries == [
        ("anonymous", "job.pause", "syncXero", "refused", "dashboard",
         "sign in at the dashboard first"),
        ("systemadmin-user", "queue.pause", "queue", "refused", "dashboard",
         "missing or wrong CSRF header"),
        ("jobviewer-user", "dlq.retry_all", "dlq", "refused", "dashboard",
         "the SystemAdmin role is required"),
    ]  # fmt: skip
    assert not (await api.hub.queue.snapshot()).paused


async def test_admin_action_works_and_is_audited(api: Api) -> None:
    """With session and CSRF header an admin pauses the queue, and the audit trail says so."""
    async with _session(api, "SystemAdmin") as browser:
        done = await browser.act("queue/pause")
        assert (done.status_code, done.headers["hx-trigger"]) == (200, "refresh")
        jobs = await browser.client.get("/admin/fragments/jobs")
        assert "Run now" in jobs.text
    assert (await api.hub.queue.snapshot()).paused
    [entry] = (await api.client.get("/api/v1/audit", headers=api.viewer)).json()["items"]
    assert (entry["actor"], entry["action"], entry["outcome"], entry["channel"]) == (
        "systemadmin-user",
        "queue.pause",
        "ok",
        "dashboard",
    )


async def test_dashboard_and_api_audit_the_same_action_names(api: Api) -> None:
    """Trigger, pause and resume a job and the queue, and retry a dead letter, once through
    the dashboard and once through the API: the audit trail names each action alike and
    tells the channels apart."""
    first, second = await _dead_letters(api, 2)
    through_dashboard = [
        "jobs/syncXero/trigger", "jobs/syncXero/pause", "jobs/syncXero/resume",
        "queue/pause", "queue/resume", f"dlq/{first}/retry",
    ]  # fmt: skip
    async with _session(api, "SystemAdmin") as browser:
        for action in through_dashboard:
            assert (await browser.act(action)).status_code == 200, action
    through_api = [
        ("jobs/syncXero/trigger", 202), ("jobs/syncXero/pause", 200),
        ("jobs/syncXero/resume", 200), ("queue/pause", 200), ("queue/resume", 200),
        (f"jobs/dlq/{second}/retry", 200),
    ]  # fmt: skip
    for action, status in through_api:
        response = await api.client.post(f"/api/v1/{action}", headers=api.admin)
        assert response.status_code == status, action
    entries = [(e.action, e.outcome, e.channel) for e in reversed(await api.audit())]
    names = ["job.trigger", "job.pause", "job.resume", "queue.pause", "queue.resume", "dlq.retry"]
    assert entries == [(n, "ok", "dashboard") for n in names] + [(n, "ok", "api") for n in names]


async def test_dashboard_actions_report_domain_errors(api: Api) -> None:
    """An action on something missing answers a 404 alert fragment (never problem+json),
    and the failed attempt is audited."""
    async with _session(api, "SystemAdmin") as browser:
        response = await browser.act("dlq/missing/delete")
    assert (response.status_code, response.headers["content-type"]) == (
        404,
        "text/html; charset=utf-8",
    )
    assert response.text == "<p role='alert'>dead letter &#39;missing&#39; not found</p>"
    [entry] = await api.audit()
    assert (entry.action, entry.outcome, entry.channel) == ("dlq.delete", "failed", "dashboard")


async def test_error_text_is_escaped(api: Api) -> None:
    """A hostile name in a path comes back escaped, never as markup."""
    async with _session(api, "SystemAdmin") as browser:
        response = await browser.act("jobs/<img src=x>/trigger")
    assert response.status_code == 404
    assert "<img" not in response.text
    assert "&lt;img" in response.text


async def test_a_run_shows_its_attempts(api: Api) -> None:
    """The run fragment has one row per attempt, with its outcome, worker and error."""
    [run_id] = await _dead_letters(api, 1)
    async with _session(api, "JobViewer") as browser:
        page = await browser.client.get(f"/admin/fragments/runs/{run_id}")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="attempt">(.*?)</tr>', page.text, re.S)
    assert len(rows) == 1
    assert ("gave_up" in rows[0], "w1" in rows[0], "ValueError: no" in rows[0]) == (True,) * 3


async def test_schedule_detail_shows_origin_and_disables_delete_for_declared(api: Api) -> None:
    """A declared schedule's detail says code owns it and disables Delete, with the reason;
    pausing it works; deleting it anyway is a 409 alert. A runtime one can be deleted."""
    await api.hub.schedules.create(
        Schedule(Cron("0 3 * * *"), job="syncXero", id="mine"), api.hub.clock.now()
    )
    async with _session(api, "SystemAdmin") as browser:
        declared = await browser.client.get("/admin/fragments/schedules/syncXero:0/slots")
        runtime = await browser.client.get("/admin/fragments/schedules/mine/slots")
        paused = await browser.act("schedules/syncXero:0/pause")
        refused = await browser.act("schedules/syncXero:0/delete")
        removed = await browser.act("schedules/mine/delete")
    assert "Declared in code" in declared.text
    assert re.search(
        r'<button class="delete-schedule" disabled title="Declared in code', declared.text
    )
    assert "Created at runtime" in runtime.text
    assert 'class="delete-schedule" hx-post=' in runtime.text
    assert (paused.status_code, refused.status_code, removed.status_code) == (200, 409, 200)
    assert "declared in code" in refused.text
    assert (await api.hub.schedules.get("syncXero:0")).paused
    assert [s.schedule.id for s in await api.hub.schedules.list()] == ["syncXero:0"]


async def test_a_used_up_schedule_shows_ended_not_none(api: Api) -> None:
    """A schedule with no next fire (its single instant passed) reads "ended", never "None"."""
    past = Once(api.hub.clock.now() - timedelta(days=1))
    await api.hub.schedules.create(Schedule(past, job="flaky", id="once"), api.hub.clock.now())
    async with _session(api, "SystemAdmin") as browser:
        jobs = await browser.client.get("/admin/fragments/jobs")
        detail = await browser.client.get("/admin/fragments/schedules/once/slots")
    row = jobs.text[jobs.text.index('data-job="flaky"') :]
    row = row[: row.index("</tr>")]
    assert "ended" in row
    assert "None" not in row
    assert "next ended" in detail.text
    assert "None" not in detail.text


async def test_the_overview_shows_firing_alerts_and_an_admin_mutes_one(api: Api) -> None:
    """A firing alert is on the overview with its severity and summary; an admin's Mute
    mutes it for an hour (audited alert.mute) and the overview then says until when; a
    viewer sees the alert but no button."""
    await api.hub.queue.enqueue([EnqueueRequest("syncXero")])
    policy = AlertPolicy(no_worker_for=timedelta(microseconds=1))
    monitor = api.hub.alert_monitor(RecordingNotifier(), policy=policy)
    await monitor.evaluate()
    await monitor.evaluate()  # pending, then firing
    async with _session(api, "JobViewer") as viewer:
        seen = await viewer.client.get("/admin/fragments/summary")
    row = re.search(
        r'<tr class="alert critical" data-key="no_worker:queue">(.*?)</tr>', seen.text, re.S
    )
    assert row is not None, seen.text
    assert "mute-alert" not in row.group(1)
    async with _session(api, "SystemAdmin") as admin:
        before = await admin.client.get("/admin/fragments/summary")
        assert 'class="mute-alert"' in before.text
        muted = await admin.act("alerts/no_worker%3Aqueue/mute")
        after = await admin.client.get("/admin/fragments/summary")
    assert muted.status_code == 200
    assert "muted until" in after.text
    assert ("alert.mute", "no_worker:queue", "ok") in [
        (e.action, e.target, e.outcome) for e in await api.audit()
    ]


async def _record_audit(api: Api, entries: list[tuple[str, str]]) -> None:
    """Audit entries (actor, action), oldest first, a second apart."""
    start = api.hub.clock.now() - timedelta(hours=1)
    for i, (actor, action) in enumerate(entries):
        at = start + timedelta(seconds=i, microseconds=123456)
        await api.hub.audit.record(
            AuditEntry(f"e{i:04d}", at, actor, ("SystemAdmin",), action, f"t{i}", "ok",
                       client="10.0.0.7", channel="api")
        )  # fmt: skip


def _audit_rows(html: str) -> list[tuple[str, str]]:
    """(target, action) of each row of the audit table."""
    rows = re.findall(r'<tr class="audit-entry" data-action="([^"]+)">(.*?)</tr>', html, re.S)
    return [(re.findall(r'data-label="Target">([^<]*)<', row)[0], action) for action, row in rows]


async def test_the_audit_page_is_for_system_admins_only(api: Api) -> None:
    """A viewer has no Audit link and is refused the audit page and fragment (403); an
    admin sees who did what to what, when (to the second, no microseconds) and from where."""
    await _record_audit(api, [("alice", "queue.pause")])
    async with _session(api, "JobViewer") as viewer:
        overview = await viewer.client.get("/admin/")
        page = await viewer.client.get("/admin/audit")
        fragment = await viewer.client.get("/admin/fragments/audit", headers={"HX-Request": "1"})
    assert 'id="nav-audit"' not in overview.text
    assert (page.status_code, fragment.status_code) == (403, 403)
    async with _session(api, "SystemAdmin") as admin:
        overview = await admin.client.get("/admin/")
        page = await admin.client.get("/admin/audit")
    assert 'id="nav-audit"' in overview.text
    assert page.status_code == 200, page.text
    row = re.search(r'<tr class="audit-entry".*?</tr>', page.text, re.S)
    assert row is not None
    assert ("alice" in row[0], "queue.pause" in row[0], "10.0.0.7" in row[0]) == (True,) * 3
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', row[0])
    assert ".123456" not in row[0]


async def test_the_audit_page_filters_by_actor_and_action_and_pages_on(api: Api) -> None:
    """Filters in the URL keep only the matching entries, newest first; "Older" follows the
    cursor with the filters kept, and the pages together hold every match exactly once."""
    actors = ["alice", "bob", "alice"]
    actions = ["job.pause", "job.pause", "queue.pause", "job.trigger"]
    entries = [(actors[i % 3], actions[i % 4]) for i in range(130)]
    await _record_audit(api, entries)
    expected = [(f"t{i}", "job.pause") for i in reversed(range(130))
                if entries[i] == ("alice", "job.pause")]  # fmt: skip
    seen: list[tuple[str, str]] = []
    async with _session(api, "SystemAdmin") as admin:
        url = "/admin/audit?actor=alice&action=job.pause"
        for _ in range(10):
            page = await admin.client.get(url)
            assert page.status_code == 200
            seen += _audit_rows(page.text)
            older = re.search(r'id="audit-older" href="([^"]+)"', page.text)
            if older is None:
                break
            url = older[1].replace("&amp;", "&")
            assert "actor=alice" in url
            assert "action=job.pause" in url
    assert seen == expected
    assert len(seen) > 1


async def test_a_sparse_audit_filter_reads_a_bounded_amount(api: Api) -> None:
    """A filter that matches nothing reads at most the scan bound per request and offers to
    read on, instead of reading the whole log at once."""
    await _record_audit(api, [("alice", "queue.pause")] * 30)
    page = await api.hub.admin.audit_trail(actor="nobody", limit=5, scan=12)
    assert (page.items, page.scanned) == ((), 15)
    assert page.next_cursor is not None
    rest = await api.hub.admin.audit_trail(actor="nobody", limit=5, cursor=page.next_cursor)
    assert (rest.items, rest.scanned, rest.next_cursor) == ((), 15, None)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0 ms"), (0.0004, "0.4 ms"), (0.012, "12 ms"), (0.9994, "999 ms"), (1.44, "1.4 s"),
        (42.4, "42 s"), (185, "3 min 5 s"), (180, "3 min"), (7500, "2 h 5 min"),
        (273600, "3 d 4 h"), (None, "-"),
    ],
)  # fmt: skip
def test_durations_read_like_a_person_wrote_them(seconds: float | None, shown: str) -> None:
    """Durations are in the unit that fits, never "0.0 s"."""
    assert duration(seconds) == shown


async def test_times_are_time_elements_to_the_second_with_the_zone_on_hover(api: Api) -> None:
    """The jobs table gives each next fire as a <time> with the exact UTC instant (no
    microseconds) and the schedule's own zone in its title; the runs list shows how long
    each run waited and took."""
    run_id = await api.hub.enqueue("syncXero")
    [claim] = await api.hub.queue.claim("w1", 1, timedelta(seconds=30))
    await api.hub.queue.finish(claim, Succeeded())
    async with _session(api, "JobViewer") as browser:
        jobs = await browser.client.get("/admin/fragments/jobs")
        runs = await browser.client.get("/admin/fragments/runs")
    row = jobs.text[jobs.text.index('data-job="syncXero"') :]
    fire = re.search(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', row)
    assert fire is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fire[1])
    assert "(Australia/Sydney)" in fire[2]
    assert fire[3].endswith(" UTC")
    assert "." not in fire[3]
    run_row = re.search(rf'<tr data-run="{run_id}">(.*?)</tr>', runs.text, re.S)
    assert run_row is not None
    waited = re.search(r'class="wait">([^<]+)<', run_row[1])
    took = re.search(r'class="duration">([^<]+)<', run_row[1])
    assert waited is not None
    assert took is not None
    assert re.fullmatch(r"\d+(\.\d)? (ms|s)", waited[1]), waited[1]
    assert re.fullmatch(r"\d+(\.\d)? (ms|s)", took[1]), took[1]


def _run_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run="([^"]+)">', html)


async def test_the_runs_page_pages_through_every_run_filtered_in_the_url(api: Api) -> None:
    """The runs page lists runs newest first a page at a time; following "Older" with the
    job and trigger filters kept visits every matching run exactly once."""
    await _dead_letters(api, 3)
    retried = [await api.hub.admin.retry_all_dead(Actor("t"))]
    manual = [await api.hub.enqueue("syncXero") for _ in range(60)]
    assert len(retried[0]) == 3
    seen: list[str] = []
    async with _session(api, "JobViewer") as browser:
        url = "/admin/runs?job=syncXero&trigger=manual"
        for _ in range(5):
            page = await browser.client.get(url)
            assert page.status_code == 200
            seen += _run_ids(page.text)
            older = re.search(r'id="runs-older" href="([^"]+)"', page.text)
            if older is None:
                break
            url = older[1].replace("&amp;", "&")
            assert ("job=syncXero" in url, "trigger=manual" in url) == (True, True)
        retries = await browser.client.get("/admin/runs?trigger=dead_letter_retry")
    # (Enqueued within one clock tick, their order among themselves is the store's.)
    assert (len(seen), sorted(seen)) == (60, sorted(manual))
    assert sorted(_run_ids(retries.text)) == sorted(retried[0])


async def test_searching_a_run_id_opens_its_page_and_an_unknown_one_says_so(api: Api) -> None:
    """A run id in the search box leads to the run's page; an unknown id is reported."""
    run_id = await api.hub.enqueue("syncXero")
    async with _session(api, "JobViewer") as browser:
        found = await browser.client.get(f"/admin/runs?q={run_id}")
        missing = await browser.client.get("/admin/runs?q=nope")
    assert (found.status_code, found.headers["location"]) == (302, f"/admin/runs/{run_id}")
    assert 'id="run-not-found"' in missing.text
    assert "No run has the id nope" in missing.text


async def test_a_run_page_shows_attempts_tracebacks_payload_and_the_origin(api: Api) -> None:
    """A retried dead letter's page links to the run it came from; that run's page shows
    each attempt with its error and traceback, and the payload."""
    [dead] = await _dead_letters(api, 1)
    retry_id = await api.hub.admin.retry_dead(Actor("t"), dead)
    async with _session(api, "JobViewer") as browser:
        retry_page = await browser.client.get(f"/admin/runs/{retry_id}")
        origin_page = await browser.client.get(f"/admin/runs/{dead}")
    assert f'id="origin-run" href="/admin/runs/{dead}"' in retry_page.text
    assert origin_page.status_code == 200
    assert len(re.findall(r'<tr class="attempt">', origin_page.text)) == 1
    assert "ValueError: no" in origin_page.text
    assert "<h3>Payload</h3>" in origin_page.text


async def test_an_admin_cancels_a_waiting_run_from_its_page(api: Api) -> None:
    """A waiting run's page offers Cancel to an admin (not to a viewer); cancelling it is
    audited as run.cancel, and cancelling it again is refused as a 409 alert."""
    run_id = await api.hub.enqueue("syncXero")
    async with _session(api, "JobViewer") as viewer:
        seen = await viewer.client.get(f"/admin/runs/{run_id}")
    assert 'id="run-cancel"' not in seen.text
    async with _session(api, "SystemAdmin") as admin:
        offered = await admin.client.get(f"/admin/runs/{run_id}")
        done = await admin.act(f"runs/{run_id}/cancel")
        again = await admin.act(f"runs/{run_id}/cancel")
        after = await admin.client.get(f"/admin/fragments/runs/{run_id}")
    assert 'id="run-cancel"' in offered.text
    assert (done.status_code, again.status_code) == (200, 409)
    assert "cancelled" in after.text
    assert 'id="run-cancel"' not in after.text
    assert [(e.action, e.outcome) for e in reversed(await api.audit())] == [
        ("run.cancel", "ok"),
        ("run.cancel", "failed"),
    ]


async def test_the_overview_charts_throughput_and_flags_failing_jobs(api: Api) -> None:
    """The throughput fragment has this hour's attempts in its chart data and in words,
    and names a job failing more than 10 % of its attempts."""
    await _dead_letters(api, 2)
    async with _session(api, "JobViewer") as browser:
        page = await browser.client.get("/admin/fragments/throughput")
    data = re.search(r"data-chart='([^']+)'", page.text)
    assert data is not None
    series = _chart(data[1])
    assert (len(series["x"]), _total(series["dead"]), series["dead"][-1]) == (24, 2, 2)
    assert "2 dead" in page.text
    assert "failing over 10 % in 24 h: flaky" in page.text


def _chart(attribute: str) -> dict[str, list[int | None]]:
    """A chart's data attribute as ``{"x": [...], "<label>": [...]}``."""
    data = json.loads(html.unescape(attribute))
    return {"x": data["x"], **{s["label"]: s["values"] for s in data["series"]}}


def _total(values: list[int | None]) -> int:
    """A chart series' sum, gaps as nothing."""
    return sum(v or 0 for v in values)


def _charts(text: str) -> dict[str, dict[str, list[int | None]]]:
    """Every chart of a fragment by its element id."""
    found = re.findall(
        r'<div id="([a-z-]+)" class="chart"[^>]*?data-chart=\'([^\']+)\'', text, re.S
    )
    return {name: _chart(data) for name, data in found}


async def test_the_charts_cover_an_hour_a_day_or_a_week_chosen_in_the_url(api: Api) -> None:
    """``?range=7d`` charts a week of hours (an attempt 3 days ago in its hour), 24 h a day,
    1 h the last 60 minutes per minute; the overview links each range, the chosen one
    marked, and keeps it for the fragment; an unknown range shows the day."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    await hub.enqueue("syncXero")
    [claim] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
    await hub.queue.finish(claim, Succeeded())
    clock.advance(timedelta(days=3))
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        week = await client.get("/admin/fragments/throughput", params={"range": "7d"})
        day = await client.get("/admin/fragments/throughput", params={"range": "24h"})
        hour = await client.get("/admin/fragments/throughput", params={"range": "1h"})
        odd = await client.get("/admin/fragments/throughput", params={"range": "1y"})
        overview = await client.get("/admin/", params={"range": "7d", "job": "syncXero"})
    await hub.aclose()
    weekly = _charts(week.text)["throughput-chart"]
    assert (len(weekly["x"]), _total(weekly["succeeded"]), weekly["succeeded"][-73]) == (168, 1, 1)
    assert "Last 7 days: 1 succeeded" in week.text
    assert (
        len(_charts(day.text)["throughput-chart"]["x"]),
        _total(_charts(day.text)["throughput-chart"]["succeeded"]),
    ) == (24, 0)
    minutes = _charts(hour.text)["throughput-chart"]
    assert (len(minutes["x"]), set(minutes)) == (60, {"x", "succeeded", "failed", "dead"})
    assert "Throughput and queue depth, last 24 h" in odd.text
    links = re.findall(
        r'<a href="/admin/\?([^"]+)"( aria-current="page")? data-range="(\w+)"', overview.text
    )
    assert links == [
        ("job=syncXero&amp;range=1h", "", "1h"),
        ("job=syncXero&amp;range=24h", "", "24h"),
        ("job=syncXero&amp;range=7d", ' aria-current="page"', "7d"),
    ]
    assert "/admin/fragments/throughput?range=7d" in overview.text


async def test_queue_depth_is_charted_from_the_samples_with_gaps_where_none_was_taken(
    api: Api,
) -> None:
    """Depth sampled at two minutes (as schedulers and the summary do) shows at those
    minutes in the hour's chart, nothing in between, and in words; the attempts per minute
    are the differences of the samples' counts. With no sample the fragment says so."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        empty = await client.get("/admin/fragments/throughput", params={"range": "1h"})
        for _ in range(3):
            await hub.enqueue("syncXero")
        await client.get("/admin/fragments/summary")  # samples this minute
        clock.advance(timedelta(minutes=1))
        [claim] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
        await hub.queue.finish(claim, Succeeded())
        await hub.depth.sample(clock.now())
        clock.advance(timedelta(minutes=3))
        await hub.depth.sample(clock.now())
        page = await client.get("/admin/fragments/throughput", params={"range": "1h"})
        day = await client.get("/admin/fragments/throughput", params={"range": "24h"})
    await hub.aclose()
    assert "No depth sample last hour yet" in empty.text
    # The day's chart has the first sample of its 10 minutes; its words the freshest.
    assert [w for w in _charts(day.text)["depth-chart"]["waiting"] if w is not None] == [3]
    assert "Latest sample, of the minute from" in day.text
    assert "2 waiting" in day.text
    depth = _charts(page.text)["depth-chart"]
    sampled = [(i, w) for i, w in enumerate(depth["waiting"]) if w is not None]
    assert [w for _, w in sampled] == [3, 2, 2]
    assert [b - a for (a, _), (b, _) in itertools.pairwise(sampled)] == [1, 3]
    assert (len(depth["x"]), set(depth)) == (
        60,
        {"x", "waiting", "delayed", "active", "dead letters"},
    )
    assert "2 waiting · 0 delayed · 0 active · 0 dead letters. Most waiting: 3" in page.text
    minutes = _charts(page.text)["throughput-chart"]
    assert [v for v in minutes["succeeded"] if v is not None] == [1]  # between 0 and 1


async def test_the_hours_chart_tells_dead_attempts_from_retried_ones(api: Api) -> None:
    """Between two samples a minute apart one attempt succeeded, two failed and were retried,
    one went to the dead letters: the hour's chart has that minute as 1 / 2 / 1, as the day's
    chart has its hour, and says so in words."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    error = ErrorInfo("ValueError", "no")
    await hub.depth.sample(clock.now())
    for _ in range(4):
        await hub.enqueue("syncXero")
    ok, retried, again, dead = await hub.queue.claim("w1", 4, timedelta(seconds=30))
    await hub.queue.finish(ok, Succeeded())
    for claim in (retried, again):
        await hub.queue.finish(claim, Failed(error, RetryAfter(timedelta(hours=1), 2)))
    await hub.queue.finish(dead, Failed(error, GiveUp(1)))
    clock.advance(timedelta(minutes=1))
    await hub.depth.sample(clock.now())
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        hour = await client.get("/admin/fragments/throughput", params={"range": "1h"})
        day = await client.get("/admin/fragments/throughput", params={"range": "24h"})
    await hub.aclose()
    minutes = _charts(hour.text)["throughput-chart"]
    counted = [
        (minutes["succeeded"][i], minutes["failed"][i], minutes["dead"][i])
        for i, v in enumerate(minutes["succeeded"])
        if v is not None
    ]
    assert counted == [(1, 2, 1)]
    hours = _charts(day.text)["throughput-chart"]
    assert (hours["succeeded"][-1], hours["failed"][-1], hours["dead"][-1]) == (1, 2, 1)
    assert "Last hour: 1 succeeded · 2 failed · 1 dead" in hour.text


async def test_a_job_page_shows_its_definition_next_fires_stats_and_runs(api: Api) -> None:
    """A job's page: its retry policy, each schedule in words and cron with the next 5
    fires (the exact instant and the schedule's zone), its statistics windows, a chart of
    its attempts per hour over the week (its totals in words) and its runs; an unknown job
    is a 404."""
    run_id = await api.hub.enqueue("syncXero")
    async with _session(api, "JobViewer") as browser:
        page = await browser.client.get("/admin/jobs/syncXero")
        missing = await browser.client.get("/admin/jobs/nope")
    assert page.status_code == 200
    assert "<code>0 2 * * *</code> in Australia/Sydney" in page.text
    fires = re.search(r'<table class="next-fires">(.*?)</table>', page.text, re.S)
    assert fires is not None
    assert len(re.findall(r"<time datetime=", fires[1])) == 5
    assert [w for w in ("1h", "24h", "7d", "90d") if f'data-window="{w}"' in page.text] == [
        "1h", "24h", "7d", "90d",
    ]  # fmt: skip
    assert _run_ids(page.text) == [run_id]
    assert "Run now" not in page.text
    assert missing.status_code == 404
    week = _charts(page.text)["job-week-chart"]
    assert (len(week["x"]), set(week)) == (168, {"x", "succeeded", "failed", "dead"})
    assert "Last 7 days: 0 succeeded · 0 failed · 0 dead" in page.text


async def _succeeded_after(hub: Hub, clock: FakeClock, ms: int) -> None:
    """One run of syncXero whose attempt succeeds `ms` after it starts."""
    await hub.enqueue("syncXero")
    [claim] = await hub.queue.claim("w1", 1, timedelta(seconds=30))
    clock.advance(timedelta(milliseconds=ms))
    await hub.queue.finish(claim, Succeeded())


async def test_a_job_page_charts_its_duration_per_hour_with_gaps_and_its_baseline(
    api: Api,
) -> None:
    """Runs of 200 ms and 2 s five hours ago, one of 400 ms now: the job page's duration
    chart has 24 hours, p50/p95 in those two hours and gaps (not zeros) elsewhere, the
    7-day p95 as a flat line, a y axis topped above the highest value, and its numbers in
    words; ``?range=7d`` charts 168 hours (the fragment keeps the range), an unknown one
    the day."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    await _succeeded_after(hub, clock, 200)
    await _succeeded_after(hub, clock, 2000)
    clock.advance(timedelta(hours=5))
    await _succeeded_after(hub, clock, 400)
    week_p95 = (await hub.stats.job("syncXero", clock.now())).windows["7d"].p95
    assert week_p95 is not None
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        day = await client.get("/admin/jobs/syncXero")
        week = await client.get("/admin/jobs/syncXero", params={"range": "7d"})
        fragment = await client.get("/admin/fragments/jobs/syncXero", params={"range": "7d"})
        odd = await client.get("/admin/jobs/syncXero", params={"range": "1y"})
    await hub.aclose()
    chart = _charts(day.text)["job-duration-chart"]
    assert (len(chart["x"]), set(chart)) == (24, {"x", "p50", "p95", "7-day p95 baseline"})
    estimate = {ms: representative(bucket_of(ms)).total_seconds() for ms in (200, 400, 2000)}
    charted = {i: (chart["p50"][i], chart["p95"][i]) for i, v in enumerate(chart["p95"]) if v}
    assert charted == {18: (estimate[200], estimate[2000]), 23: (estimate[400],) * 2}
    assert [chart["p50"][i] for i in range(24) if i not in charted] == [None] * 22
    assert set(chart["7-day p95 baseline"]) == {week_p95.total_seconds()}
    data = json.loads(html.unescape(re.findall(r"data-chart='([^']+)'", day.text)[-1]))
    assert (data["unit"], data["y_min_top"]) == ("seconds", round(estimate[2000] * 1.1, 6))
    assert data["series"][2]["points"] is False
    assert "2 of 24 hours with runs" in day.text
    assert f"7-day p95 {duration(week_p95.total_seconds())} (the dotted line)" in day.text
    assert "p50 solid, p95 dashed" in day.text
    assert len(_charts(week.text)["job-duration-chart"]["x"]) == 168
    assert 'aria-current="page" data-range="7d">last 7 days' in week.text
    assert "/admin/fragments/jobs/syncXero?range=7d" in week.text
    assert len(_charts(fragment.text)["job-duration-chart"]["x"]) == 168
    assert len(_charts(odd.text)["job-duration-chart"]["x"]) == 24


async def test_the_overview_trend_row_has_a_p95_sparkline_broken_where_nothing_ran(
    api: Api,
) -> None:
    """Runs five hours ago and in the last two hours: the job's trend row draws its p95 per
    hour as a dot, then a line of two hours (gaps between, not zeros), and says how many
    hours had runs; a job that did not run has no p95 sparkline."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    await _succeeded_after(hub, clock, 200)
    clock.advance(timedelta(hours=4))
    await _succeeded_after(hub, clock, 2000)
    clock.advance(timedelta(hours=1))
    await _succeeded_after(hub, clock, 400)
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        page = await client.get("/admin/fragments/throughput")
    await hub.aclose()
    rows = dict(re.findall(r'<tr data-trend="(\w+)">(.*?)</tr>', page.text, re.S))
    path = re.search(
        r'class="spark p95-spark".*?aria-label="([^"]+)".*?<path d="([^"]+)"',
        rows["syncXero"],
        re.S,
    )
    assert path is not None
    highest = duration(representative(bucket_of(2000)).total_seconds())
    assert path[1] == f"p95 per hour over 24 h, 3 hours with runs, highest {highest}"
    assert re.fullmatch(r"M72,\d+ h0 M88,1 L92,\d+", path[2]), path[2]
    assert "p95-spark" not in rows["flaky"]


async def test_paging_a_job_pages_runs_keeps_the_duration_range(api: Api) -> None:
    """On ``?range=7d`` the runs' "Older" link keeps the range, and so does the page it
    opens (its chart and its refreshing fragment)."""
    hub = hub_for_tests(api.hub)
    for _ in range(51):
        await hub.enqueue("syncXero")
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        first = await client.get("/admin/jobs/syncXero", params={"range": "7d"})
        older = re.search(r'<a id="job-runs-older" href="([^"]+)"', first.text)
        assert older is not None
        second = await client.get(html.unescape(older[1]))
    await hub.aclose()
    assert html.unescape(older[1]).startswith("/admin/jobs/syncXero?range=7d&cursor=")
    assert len(_charts(second.text)["job-duration-chart"]["x"]) == 168
    assert "/admin/fragments/jobs/syncXero?range=7d&amp;cursor=" in second.text


async def test_a_job_page_without_runs_says_so_under_an_empty_duration_chart(api: Api) -> None:
    """No attempt finished: the duration chart is all gaps with no baseline, and says so."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        page = await client.get("/admin/jobs/syncXero")
    await hub.aclose()
    chart = _charts(page.text)["job-duration-chart"]
    assert (set(chart), set(chart["p95"])) == ({"x", "p50", "p95"}, {None})
    assert "No attempt finished last 24 h." in page.text


async def test_the_jobs_table_flags_a_job_failing_over_ten_percent(api: Api) -> None:
    """A job whose attempts failed more than 10 % of the time in 24 h is flagged in words
    (not by colour alone); a job that did not run says so."""
    await _dead_letters(api, 2)
    async with _session(api, "JobViewer") as browser:
        jobs = await browser.client.get("/admin/fragments/jobs")
    row = jobs.text[jobs.text.index('data-job="flaky"') :]
    row = row[: row.index("</tr>")]
    assert "0 ok · 2 failed" in row
    assert "⚠ 100 % failing" in row
    quiet = jobs.text[jobs.text.index('data-job="syncXero"') :]
    assert "no runs" in quiet[: quiet.index("</tr>")]


async def test_runs_filtered_to_a_recent_range_stop_at_the_first_older_run(api: Api) -> None:
    """Runs enqueued within the last hour are found; the listing ends at the first older
    run instead of reading on through the history (the runs page's ``within`` filter)."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    old = [await hub.enqueue("syncXero") for _ in range(30)]
    clock.advance(timedelta(hours=2))
    recent = [await hub.enqueue("syncXero") for _ in range(3)]
    since = clock.now() - timedelta(hours=1)
    page = await hub.admin.find_runs(since=since, limit=5)
    assert (sorted(r.id for r in page.items), page.scanned, page.next_cursor) == (
        sorted(recent), 5, None,
    )  # fmt: skip
    everything = await hub.admin.find_runs(limit=50)
    assert len(everything.items) == len(old) + len(recent)
    await hub.aclose()


async def test_the_schedule_editor_previews_and_saves_a_cron_schedule(api: Api) -> None:
    """The editor's preview lists the next 5 fires of an expression in its zone, or says
    what is wrong; Save stores a runtime schedule
    (audited schedule.create); a bad expression is a 400 and nothing is stored."""
    async with _session(api, "SystemAdmin") as admin:
        good = await admin.client.get(
            "/admin/fragments/jobs/syncXero/preview",
            params={"cron": "30 2 * * *", "timezone": "Australia/Sydney"},
        )
        bad = await admin.client.get(
            "/admin/fragments/jobs/syncXero/preview", params={"cron": "0 99 * * *"}
        )
        headers = {"X-Hub-CSRF": admin.csrf, "HX-Request": "true"}
        refused = await admin.client.post(
            "/admin/actions/jobs/syncXero/schedules",
            data={"id": "nightly", "cron": "0 99 * * *", "timezone": "UTC"},
            headers=headers,
        )
        saved = await admin.client.post(
            "/admin/actions/jobs/syncXero/schedules",
            data={"id": "nightly", "cron": "0 3 * * 1-5", "timezone": "Europe/London"},
            headers=headers,
        )
    assert len(re.findall(r"<li><time datetime=", good.text)) == 5
    assert "Australia/Sydney" in good.text
    assert "bad hour field" in bad.text
    assert refused.status_code == 400
    assert "bad hour field" in refused.text
    assert (saved.status_code, saved.headers["hx-trigger"]) == (200, "refresh")
    assert "Saved nightly" in saved.text
    stored = await api.hub.schedules.get("nightly")
    assert (stored.schedule.job, stored.schedule.timezone) == ("syncXero", "Europe/London")
    assert ("schedule.create", "nightly", "ok") in [
        (e.action, e.target, e.outcome) for e in await api.audit()
    ]


async def test_the_overview_flags_a_job_whose_p95_regressed_against_its_week(api: Api) -> None:
    """A job whose attempts took 10 ms all week and 5 s today is flagged "p95 over 2x its
    7-day" in its trend row (in words, with its sparkline); a job that ran normally is not."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)

    async def run(n: int, took: timedelta) -> None:
        for _ in range(n):
            await hub.enqueue("syncXero")
        claims = await hub.queue.claim("w1", n, timedelta(minutes=5))
        clock.advance(took)
        for claim in claims:
            await hub.queue.finish(claim, Succeeded())

    await run(100, timedelta(milliseconds=10))
    clock.advance(timedelta(days=3))
    await run(4, timedelta(seconds=5))
    async with client_for(build_app(hub)) as client:
        await _sign_in(client, "JobViewer")
        page = await client.get("/admin/fragments/throughput")
    await hub.aclose()
    row = re.search(r'<tr data-trend="syncXero">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert "flag-slower" in row[1]
    assert "<polyline" in row[1]
    other = re.search(r'<tr data-trend="flaky">(.*?)</tr>', page.text, re.S)
    assert other is not None
    assert "flag-" not in other[1]


@pytest.mark.parametrize("page", ["runs", "audit", "jobs/syncXero", "fragments/run-list"])
async def test_a_malformed_cursor_is_refused_not_a_server_error(api: Api, page: str) -> None:
    """A cursor that no page handed out is a 400, never a 500."""
    async with _session(api, "SystemAdmin") as browser:
        response = await browser.client.get(f"/admin/{page}", params={"cursor": "x:1'"})
    assert response.status_code == 400


async def test_an_admin_asks_a_running_run_to_stop_from_its_page(api: Api) -> None:
    """A running run's page offers "Stop and cancel"; pressed, the page says the cancel was
    requested and offers nothing more."""
    run_id = await api.hub.enqueue("syncXero")
    await api.hub.queue.claim("w1", 1, timedelta(seconds=30))
    async with _session(api, "SystemAdmin") as admin:
        offered = await admin.client.get(f"/admin/runs/{run_id}")
        done = await admin.act(f"runs/{run_id}/cancel")
        after = await admin.client.get(f"/admin/fragments/runs/{run_id}")
    assert "Stop and cancel" in offered.text
    assert done.status_code == 200
    assert 'id="run-cancel-requested"' in after.text
    assert 'id="run-cancel"' not in after.text
    assert (await api.hub.history.get(run_id)).cancel_requested_at is not None


async def test_bulk_actions_on_the_runs_page_state_their_count(api: Api) -> None:
    """Filtered by job, the runs page offers an admin to cancel the matching runs with a
    confirmation that states how many; a viewer is offered nothing; pressed, they are
    cancelled as one audited action."""
    ids = [await api.hub.enqueue("syncXero") for _ in range(3)]
    async with _session(api, "JobViewer") as viewer:
        seen = await viewer.client.get("/admin/runs?job=syncXero")
    assert 'id="bulk-actions"' not in seen.text
    async with _session(api, "SystemAdmin") as admin:
        unfiltered = await admin.client.get("/admin/runs")
        offered = await admin.client.get("/admin/runs?job=syncXero")
        done = await admin.act("runs/bulk/cancel?job=syncXero")
    assert 'id="bulk-actions"' not in unfiltered.text  # filter first: never "everything"
    assert 'hx-confirm="Cancel 3 runs matching this filter?"' in offered.text
    assert done.status_code == 200
    assert {(await api.hub.history.get(i)).state for i in ids} == {RunState.CANCELLED}
    entry = (await api.audit())[0]
    assert (entry.action, entry.channel, entry.after) == (
        "runs.cancel",
        "dashboard",
        {"done": 3, "skipped": 0, "more": False},
    )


async def test_an_admin_edits_a_runtime_schedule_with_a_preview_before_saving(api: Api) -> None:
    """A runtime schedule's editor is filled in from the stored one; the preview of an
    interval ending in 3 h lists its last fires and no more (nothing stored yet); Save
    changes the trigger and end, keeps the payload, and is audited as schedule.update with
    the definition before. A bad interval is a 400 and changes nothing."""
    clock = FakeClock()
    hub = hub_for_tests(api.hub, clock=clock)
    await hub.sync_schedules()
    actor = Actor("test")
    schedule = Schedule(Cron("0 3 * * *", "Europe/London"), job="syncXero", id="nightly",
                        payload={"full": True})  # fmt: skip
    await hub.admin.create_schedule(actor, schedule)
    end = (clock.now() + timedelta(hours=3)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    form = {"kind": "every", "every": "3600", "timezone": "UTC", "end": end}
    async with client_for(build_app(hub)) as client:
        csrf = await _sign_in(client, "SystemAdmin")
        headers = {"X-Hub-CSRF": csrf, "HX-Request": "true"}
        editor = await client.get("/admin/fragments/schedules/nightly/editor")
        preview = await client.get(
            "/admin/fragments/jobs/syncXero/preview", params={**form, "editing": "nightly"}
        )
        unchanged = (await hub.schedules.get("nightly")).schedule
        bad = await client.post("/admin/actions/schedules/nightly/edit",
                                data={**form, "every": "soon"}, headers=headers)  # fmt: skip
        saved = await client.post("/admin/actions/schedules/nightly/edit", data=form,
                                  headers=headers)  # fmt: skip
        declared = await client.get("/admin/fragments/schedules/syncXero:0/editor")
        refused = await client.post("/admin/actions/schedules/syncXero:0/edit", data=form,
                                    headers=headers)  # fmt: skip
    stored = (await hub.schedules.get("nightly")).schedule
    entries = [(e.action, e.target, e.outcome) for e in (await hub.audit.list()).items]
    await hub.aclose()
    assert 'value="0 3 * * *"' in editor.text
    assert 'value="Europe/London"' in editor.text
    assert len(re.findall(r"<li><time datetime=", preview.text)) == 3  # the end stops it
    assert unchanged == schedule
    assert (bad.status_code, "give the interval in seconds" in bad.text) == (400, True)
    assert (saved.status_code, saved.headers["hx-trigger"]) == (200, "refresh")
    assert "Saved nightly: Every hour, until" in saved.text
    assert stored.trigger == Every(timedelta(hours=1))
    assert stored.end == datetime.fromisoformat(end).replace(tzinfo=UTC)
    assert stored.payload == {"full": True}
    assert ("schedule.update", "nightly", "ok") in entries
    assert "Declared in code" in declared.text
    assert refused.status_code == 409


async def test_a_viewer_cannot_open_a_schedule_editor(api: Api) -> None:
    """The editor is for SystemAdmin only: a JobViewer gets 403 and no form."""
    await api.hub.admin.create_schedule(
        Actor("test"), Schedule(Cron("0 3 * * *"), job="syncXero", id="nightly")
    )
    async with _session(api, "JobViewer") as browser:
        editor = await browser.client.get("/admin/fragments/schedules/nightly/editor")
        page = await browser.client.get("/admin/jobs/syncXero")
    assert (editor.status_code, "<form" in editor.text) == (403, False)
    assert 'schedule-edit"' not in page.text  # no Edit button


async def test_run_now_from_a_job_page_takes_an_optional_json_payload(api: Api) -> None:
    """The job page's Run now with a payload enqueues a run carrying that JSON object and
    links it; text that is not a JSON object is a 400 saying so and enqueues nothing."""
    async with _session(api, "SystemAdmin") as admin:
        page = await admin.client.get("/admin/jobs/syncXero")
        headers = {"X-Hub-CSRF": admin.csrf, "HX-Request": "true"}
        url = "/admin/actions/jobs/syncXero/trigger"
        done = await admin.client.post(url, data={"payload": '{"full": true}'}, headers=headers)
        broken = await admin.client.post(url, data={"payload": "{full"}, headers=headers)
        listed = await admin.client.post(url, data={"payload": "[1]"}, headers=headers)
    assert 'id="trigger-form"' in page.text
    [run] = (await api.hub.history.list(job="syncXero")).items
    assert (done.status_code, run.payload) == (200, {"full": True})
    assert f"/admin/runs/{run.id}" in done.text
    assert (broken.status_code, "the payload is not JSON" in broken.text) == (400, True)
    assert (listed.status_code, "a JSON object" in listed.text) == (400, True)


async def test_an_admin_cancels_the_runs_ticked_on_the_runs_page(api: Api) -> None:
    """Each run of the runs page has a tick box for an admin (none for a viewer); the runs
    ticked, and only those, are cancelled as one audited entry with the count; the answer
    says how many were done and skipped; a malformed run id is a 400."""
    ids = [await api.hub.enqueue("syncXero") for _ in range(3)]
    async with _session(api, "JobViewer") as viewer:
        seen = await viewer.client.get("/admin/runs")
    async with _session(api, "SystemAdmin") as admin:
        page = await admin.client.get("/admin/runs")
        headers = {"X-Hub-CSRF": admin.csrf, "HX-Request": "true"}
        done = await admin.client.post("/admin/actions/runs/bulk/cancel",
                                       data={"run_id": ids[:2]}, headers=headers)  # fmt: skip
        again = await admin.client.post("/admin/actions/runs/bulk/cancel",
                                        data={"run_id": ids[:1]}, headers=headers)  # fmt: skip
        bad = await admin.client.post("/admin/actions/runs/bulk/cancel",
                                      data={"run_id": ["<x>"]}, headers=headers)  # fmt: skip
    assert 'class="pick"' not in seen.text
    assert all(f'id="pick-{i}"' in page.text for i in ids)
    assert "cancel: 2 done" in done.text
    assert "cancel: 0 done, 1 of those ticked not in a state" in again.text
    assert bad.status_code == 400
    states = [(await api.hub.history.get(i)).state for i in ids]
    assert states == [RunState.CANCELLED, RunState.CANCELLED, RunState.QUEUED]
    entry = [e for e in await api.audit() if e.action == "runs.cancel"][-1]
    assert entry.after == {"done": 2, "skipped": 0, "more": False}
