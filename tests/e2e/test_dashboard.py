"""The dashboard in real Chromium (Debian's, driven by Playwright; no browser download)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, Route

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ENV = "HUB_SCHEDULER_TEST_CHROMIUM"
SCREENSHOT = Path(__file__).parents[2] / "artifacts" / "dashboard.png"
#: Classes htmx puts on elements while their request is in flight or their content is being
#: swapped in and settled.
HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """Debian's chromium; CI names it (and then a missing browser fails instead of skipping)."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or ""
    if not Path(path).is_file():
        if os.environ.get(CHROMIUM_ENV):
            pytest.fail(f"{CHROMIUM_ENV}={path} is set but no browser is there")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """`hub-scheduler serve` with the test app on memory://: (base URL, admin token)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_SCHEDULER_")}
    process = subprocess.Popen(  # noqa: S603 - our interpreter and our app
        [sys.executable, "-m", "hub_scheduler", "serve", "tests.e2e.dashboard_app:hub",
         "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    banner = "".join(process.stdout.readline() for _ in range(4))
    match = re.search(r"Bearer (\S+)", banner)
    assert match is not None, banner
    try:
        yield f"http://127.0.0.1:{port}", match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        process.stdout.close()


def test_dashboard_end_to_end(served: tuple[str, str]) -> None:
    """Sign in (no request of the page 404s, the favicon included), see the 11 jobs, run
    one, pause/resume a job and the queue, retry a dead letter, and watch the page refresh
    itself every 10 s."""
    base, token = served
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.clock.install()
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        page.goto(f"{base}/admin/")
        page.fill("#token", token)
        page.click("#sign-in")
        expect = playwright_api.expect

        def settled() -> None:
            """Let htmx finish its requests and swaps before the next click lands: a button
            swapped in works only once htmx has processed it. (A load state such as
            networkidle is reached once per page, so waiting for it again returns at once.)"""
            page.wait_for_function(f"() => !document.querySelector({HTMX_BUSY!r})", polling=20)

        jobs = page.locator("#jobs-table tbody tr")
        expect(jobs).to_have_count(11)

        settled()
        page.locator('tr[data-job="pdReminders"] .run-now').click()
        expect(page.locator("#runs-table tbody tr", has_text="pdReminders")).to_have_count(1)

        settled()
        row = page.locator('tr[data-job="syncXero"]')
        row.locator(".pause").click()
        expect(row.locator(".paused-flag")).to_have_text("yes")
        settled()
        row.locator(".resume").click()
        expect(row.locator(".paused-flag")).to_have_text("no")

        settled()
        page.click("#queue-pause")
        expect(page.locator("#queue-state")).to_have_text("paused")
        settled()
        page.click("#queue-resume")
        expect(page.locator("#queue-state")).to_have_text("running")

        settled()
        page.locator('tr[data-job="retryFailedEmails"] .run-now').click()
        dead = page.locator("#dlq-table tbody tr[data-dead]")
        # The worker needs a moment: move the page's clock 10 s at a time; each move makes
        # the dashboard refresh itself, until the dead letter shows (at most 10 refreshes).
        for _ in range(10):
            with page.expect_response(re.compile(r"/fragments/dlq")):
                page.clock.run_for(10_000)
            settled()
            if dead.count():
                break
        expect(dead).to_have_count(1)
        dead_id = dead.first.get_attribute("data-dead")
        settled()
        dead.first.locator(".dlq-retry").click()
        retried = page.locator("#runs-table tbody tr", has_text="dead_letter_retry")
        expect(retried).to_have_count(1)
        expect(page.locator(f'#dlq-table tr[data-dead="{dead_id}"]')).to_have_count(0)
        with page.expect_request(re.compile(r"/fragments/summary")):
            page.clock.run_for(10_000)

        settled()
        page.select_option('select[name="job"]', "pdReminders")
        page.wait_for_url(re.compile(r"job=pdReminders"))
        expect(page.locator("#runs-table tbody tr")).to_have_count(1)
        page.reload()  # the filter lives in the URL, so it survives a reload
        expect(page.locator('select[name="job"]')).to_have_value("pdReminders")
        expect(page.locator("#runs-table tbody tr")).to_have_count(1)

        icon = page.evaluate("document.querySelector('link[rel=icon]').href")
        assert page.request.get(icon).headers["content-type"] == "image/svg+xml"
        assert missing == []  # the favicon included: no 404 on any load

        # The overview's throughput chart is drawn (a uPlot canvas) and labelled in words.
        expect(page.locator("#throughput-chart canvas")).to_have_count(1)
        expect(page.locator("#throughput-totals")).to_contain_text("dead")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.context.add_cookies(page.context.cookies())
        phone.goto(f"{base}/admin/")
        expect(phone.locator("#jobs-table tbody tr")).to_have_count(11)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        phone.screenshot(path=str(SCREENSHOT.with_name("dashboard-phone.png")), full_page=True)
        browser.close()


def _signed_in(
    pw: Playwright, base: str, token: str, width: int = 1280, zone: str = "UTC"
) -> tuple[Browser, Page]:
    """A Chromium page signed in to the dashboard, `width` pixels wide, in time zone `zone`."""
    browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": width, "height": 900}, timezone_id=zone)
    page.goto(f"{base}/admin/login")
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/admin/$"))
    return browser, page


def _settled(page: Page) -> None:
    """Wait until htmx has no request or swap in flight."""
    page.wait_for_function(f"() => !document.querySelector({HTMX_BUSY!r})", polling=20)


def test_audit_view_filters_in_the_url(served: tuple[str, str]) -> None:
    """An admin pauses and resumes the queue, opens Audit from the header, filters by
    action: only those entries show, the filter is in the URL and survives a reload."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        _settled(page)
        page.click("#queue-pause")
        expect(page.locator("#queue-state")).to_have_text("paused")
        _settled(page)
        page.click("#queue-resume")
        expect(page.locator("#queue-state")).to_have_text("running")
        page.click("#nav-audit")
        page.wait_for_url(re.compile(r"/admin/audit"))
        page.select_option('select[name="action"]', "queue.pause")
        page.click("#audit-filters button[type=submit]")
        page.wait_for_url(re.compile(r"action=queue\.pause"))
        rows = page.locator("#audit-table tr.audit-entry")
        expect(rows.first).to_be_visible()
        assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.action)")) == {"queue.pause"}
        page.reload()
        expect(page.locator('select[name="action"]')).to_have_value("queue.pause")
        browser.close()


def test_times_show_in_the_viewers_zone_relative_with_the_exact_instant_on_hover(
    served: tuple[str, str],
) -> None:
    """In a browser set to Asia/Kolkata (UTC+05:30) a job's next fire reads as local time
    with "in ..." and its title keeps the exact UTC instant and the schedule's zone; a run
    that just happened reads "... ago" or "now", with its wait and duration."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token, zone="Asia/Kolkata")
        _settled(page)
        page.locator('tr[data-job="credentialExpiry"] .run-now').click()
        run = page.locator("#runs-table tbody tr", has_text="credentialExpiry").first
        # Listed at once, maybe before a worker took it: the list's next 10 s refresh shows
        # it finished.
        expect(run.locator(".duration")).not_to_have_text("-", timeout=15_000)
        fire = page.locator('tr[data-job="credentialExpiry"] .next-fire time').first
        expect(fire).to_contain_text("(in ")
        instant = datetime.fromisoformat(fire.get_attribute("datetime") or "")
        local = instant.astimezone(timezone(timedelta(hours=5, minutes=30)))
        # Waits: a list refresh may swap the cell in before times.js has rewritten it.
        expect(fire).to_contain_text(local.strftime("%H:%M:%S"))
        title = fire.get_attribute("title") or ""
        assert instant.strftime("%Y-%m-%d %H:%M:%S UTC") in title
        assert "(Australia/Sydney)" in title
        enqueued = run.locator("time").first
        expect(enqueued).to_contain_text(re.compile(r"\((now|\d+ s ago)\)"))
        assert re.fullmatch(r"\d+(\.\d)? (ms|s)", run.locator(".duration").inner_text())
        assert re.fullmatch(r"\d+(\.\d)? (ms|s|min \d+ s)", run.locator(".wait").inner_text())
        browser.close()


def test_runs_page_filters_searches_and_opens_a_run(served: tuple[str, str]) -> None:
    """From the header's Runs: filter by job, trigger and age (kept in the URL), open a run's
    page with its attempts and payload, and find the same run again by its id."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        _settled(page)
        page.locator('tr[data-job="policyReviews"] .run-now').click()
        expect(page.locator("#runs-table tbody tr", has_text="policyReviews")).to_have_count(1)
        page.click('header a[href$="/runs"]')
        page.wait_for_url(re.compile(r"/admin/runs$"))
        page.select_option('#runs-filters select[name="job"]', "policyReviews")
        page.select_option('#runs-filters select[name="trigger"]', "manual")
        page.select_option('#runs-filters select[name="within"]', "1h")
        page.click("#runs-filters button[type=submit]")
        page.wait_for_url(re.compile(r"job=policyReviews.*trigger=manual&within=1h"))
        rows = page.locator("#runs-table tbody tr[data-run]")
        expect(rows).to_have_count(1)
        run_id = rows.first.get_attribute("data-run")
        rows.first.locator("a").click()
        page.wait_for_url(re.compile(rf"/admin/runs/{run_id}$"))
        expect(page.locator("#run-detail h2")).to_contain_text(f"Run {run_id}")
        expect(page.locator("#attempts-table tr.attempt")).to_have_count(1, timeout=15_000)
        page.screenshot(path=str(SCREENSHOT.with_name("run-page.png")), full_page=True)
        page.click('header a[href$="/runs"]')
        page.fill('#run-search input[name="q"]', run_id or "")
        page.click("#run-search button[type=submit]")
        page.wait_for_url(re.compile(rf"/admin/runs/{run_id}$"))
        browser.close()


def test_cancel_a_waiting_run_from_its_page(served: tuple[str, str]) -> None:
    """With its job paused, a run waits; on its page Cancel (confirmed) cancels it and the
    page shows it cancelled, without the button."""
    base, token = served
    expect = playwright_api.expect
    job = "monthlyComplianceReport"
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        page.on("dialog", lambda dialog: dialog.accept())
        row = page.locator(f'tr[data-job="{job}"]')
        _settled(page)
        row.locator(".pause").click()
        expect(row.locator(".paused-flag")).to_have_text("yes")
        _settled(page)
        row.locator(".run-now").click()
        _settled(page)
        link = page.locator("#runs-table tbody tr", has_text=job).locator("a").first
        link.click()
        _settled(page)
        page.click("#run-detail a.permalink")
        expect(page.locator("#run-detail .state-queued")).to_be_visible()
        page.click("#run-cancel")
        expect(page.locator("#run-detail .state-cancelled")).to_be_visible()
        expect(page.locator("#run-cancel")).to_have_count(0)
        page.goto(f"{base}/admin/")
        _settled(page)
        page.locator(f'tr[data-job="{job}"] .resume').click()
        expect(page.locator(f'tr[data-job="{job}"] .paused-flag')).to_have_text("no")
        browser.close()


def test_bulk_cancel_from_the_runs_page_confirms_the_count(served: tuple[str, str]) -> None:
    """Runs of a paused job wait; the runs page filtered by that job and state offers to
    cancel them, its confirmation states how many, and accepting cancels every one."""
    base, token = served
    expect = playwright_api.expect
    job = "syncAccelerate"
    asked: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)

        def accept(dialog: object) -> None:
            asked.append(dialog.message)  # type: ignore[attr-defined]
            dialog.accept()  # type: ignore[attr-defined]

        page.on("dialog", accept)
        row = page.locator(f'tr[data-job="{job}"]')
        _settled(page)
        row.locator(".pause").click()
        expect(row.locator(".paused-flag")).to_have_text("yes")
        for _ in range(3):
            _settled(page)
            row.locator(".run-now").click()
        page.goto(f"{base}/admin/runs?job={job}&state=queued")
        _settled(page)
        expect(page.locator("#runs-table tbody tr .state-queued")).to_have_count(3)
        with page.expect_response(lambda r: "/actions/runs/bulk/cancel" in r.url) as done:
            page.click("#bulk-cancel")
        assert done.value.status == 200
        page.goto(f"{base}/admin/runs?job={job}&state=cancelled")
        _settled(page)
        expect(page.locator("#runs-table tbody tr .state-cancelled")).to_have_count(3)
        page.goto(f"{base}/admin/")
        _settled(page)
        page.locator(f'tr[data-job="{job}"] .resume').click()
        expect(page.locator(f'tr[data-job="{job}"] .paused-flag')).to_have_text("no")
        browser.close()
    assert asked[-1] == "Cancel 3 runs matching this filter?"


def test_a_change_reaches_the_page_over_the_event_stream(served: tuple[str, str]) -> None:
    """With the runs page open, a run triggered through the API shows up without waiting
    for the 10 s poll: the event stream said change and the list refreshed."""
    base, token = served
    expect = playwright_api.expect
    job = "policyReviews"
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        page.goto(f"{base}/admin/runs?job={job}")
        _settled(page)
        expect(page.locator("body")).to_have_attribute("data-live", "on")
        before = page.locator("#runs-table tbody tr[data-run]").count()
        request = urllib.request.Request(  # noqa: S310 - our own server on loopback
            f"{base}/api/v1/jobs/{job}/trigger", data=b"{}", method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert answer.status == 202
        # Well inside the 10 s poll: only the stream can have refreshed it this soon.
        changed = re.compile(r"[1-9]")
        expect(page.locator("body")).to_have_attribute("data-changes", changed, timeout=6000)
        rows = page.locator("#runs-table tbody tr[data-run]")
        expect(rows).to_have_count(before + 1, timeout=6000)
        browser.close()


def test_the_event_stream_is_opened_again_after_a_refusal(served: tuple[str, str]) -> None:
    """A stream refused with a 429 (the reads budget spent) is not given up for good, as an
    EventSource does by itself: 30 s later the page opens a new one and is live again."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        refused: list[str] = []

        def refuse_once(route: Route) -> None:
            if refused:
                route.continue_()
            else:
                refused.append(route.request.url)
                route.fulfill(status=429, body="too many requests")

        page.route(re.compile(r"/admin/events$"), refuse_once)
        page.clock.install()
        page.goto(f"{base}/admin/runs")
        expect(page.locator("body")).to_have_attribute("data-live", "off")
        page.clock.run_for(31_000)
        expect(page.locator("body")).to_have_attribute("data-live", "on")
        assert len(refused) == 1
        browser.close()


def test_a_refused_action_says_why(served: tuple[str, str]) -> None:
    """An action the server refuses (cancelling a run that does not exist) shows the
    server's reason in an alert, instead of nothing."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        _settled(page)
        page.evaluate("htmx.ajax('POST', '/admin/actions/runs/0123456789abcdef/cancel', "
                      "{swap: 'none'})")  # fmt: skip
        alert = page.locator("#action-error [role=alert]")
        expect(alert).to_have_text("run '0123456789abcdef' not found")
        browser.close()


#: What the job page's duration chart drew (uPlot keeps its instance on the element):
#: series labels, the y axis' lower end, the hours charted and those with a p95.
DRAWN_DURATIONS = """() => { const u = document.querySelector("#job-duration-chart").uplot;
  return { labels: u.series.map(s => s.label), y_min: u.scales.y.min, hours: u.data[0].length,
           with_p95: u.data[0].filter((x, i) => u.data[2][i] !== null) }; }"""
#: The legend's line swatches by label: their border style (the line's pattern).
LEGEND_LINES = """() => Object.fromEntries([...document.querySelectorAll(
    "#job-duration-chart .u-legend .u-series")].slice(1).map(r => [
  r.querySelector(".u-label").textContent,
  getComputedStyle(r.querySelector(".u-marker")).borderTopStyle]))"""


def test_job_page_shows_the_definition_and_runs_the_job(served: tuple[str, str]) -> None:
    """From the jobs table a job's name opens its page: next fires in words and cron,
    statistics; Run now there lists the new run on the page; once it succeeded its hour
    has a p50/p95 on the duration chart (the other 23 hours gaps) with the 7-day baseline,
    a legend telling the lines apart by pattern, a y axis from 0; "last 7 days" charts 168
    hours."""
    base, token = served
    expect = playwright_api.expect
    job = "complaintSLA"
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        started = int(time.time()) // 3600 * 3600
        page.locator(f'tr[data-job="{job}"] a.job-link').click()
        page.wait_for_url(re.compile(rf"/admin/jobs/{job}$"))
        expect(page.locator("#job-schedules code")).to_have_text("0 9 * * *")
        expect(page.locator("table.next-fires tbody tr")).to_have_count(5)
        expect(page.locator("#stats-table tbody tr")).to_have_count(4)
        _settled(page)
        page.click("#job-definition .run-now")
        expect(page.locator("#job-runs #runs-table tbody tr[data-run]")).to_have_count(1)
        expect(page.locator("#job-week-chart canvas")).to_have_count(1)
        # The event stream refreshes the page when the run has finished.
        expect(page.locator("#job-runs td.state-succeeded")).to_have_count(1, timeout=20_000)
        expect(page.locator("#job-duration-words")).to_contain_text("hours with runs")
        _settled(page)
        expect(page.locator("#job-duration-chart canvas")).to_have_count(1)
        drawn = page.evaluate(DRAWN_DURATIONS)
        ended = int(time.time()) // 3600 * 3600
        assert drawn["labels"] == ["time", "p50", "p95", "7-day p95 baseline"]
        assert (drawn["y_min"], drawn["hours"]) == (0, 24)
        assert len(drawn["with_p95"]) == 1  # one hour with runs, 23 gaps
        assert started <= drawn["with_p95"][0] <= ended
        assert page.evaluate(LEGEND_LINES) == {
            "p50": "solid",
            "p95": "dashed",
            "7-day p95 baseline": "dotted",
        }
        page.screenshot(path=str(SCREENSHOT.with_name("job-page.png")), full_page=True)
        page.click('#duration-ranges a[data-range="7d"]')
        page.wait_for_url(re.compile(rf"/admin/jobs/{job}\?range=7d$"))
        expect(page.locator('#duration-ranges a[aria-current="page"]')).to_have_text("last 7 days")
        expect(page.locator("#job-duration-chart canvas")).to_have_count(1)
        assert page.evaluate(DRAWN_DURATIONS)["hours"] == 168
        browser.close()


def test_schedule_editor_previews_as_you_type_and_saves(served: tuple[str, str]) -> None:
    """On a job's page an admin types a cron expression: the next 5 fires show as they
    type, a mistake is explained; Save adds the schedule to the job's schedules."""
    base, token = served
    expect = playwright_api.expect
    job = "feedbackAIAnalysis"
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        page.goto(f"{base}/admin/jobs/{job}")
        page.fill('#schedule-form input[name="id"]', "ui-made")
        page.locator('#schedule-form input[name="cron"]').press_sequentially("0 99 * * *")
        expect(page.locator("#preview-error")).to_contain_text("bad hour field")
        page.fill('#schedule-form input[name="cron"]', "15 6 * * 1-5")
        expect(page.locator("#preview-fires li")).to_have_count(5)
        _settled(page)
        page.click('#schedule-form button[type="submit"]')
        expect(page.locator("#schedule-saved")).to_contain_text("Saved ui-made")
        expect(page.locator("#job-schedules code", has_text="15 6 * * 1-5")).to_have_count(1)
        browser.close()


def test_chart_range_is_chosen_in_the_url_and_depth_is_charted(served: tuple[str, str]) -> None:
    """An admin picks "last 7 days": the URL says range=7d (a reload keeps it), the link is
    marked current, the throughput chart spans 168 hours and the queue depth chart is drawn
    (the page's own summary sampled the depth), each with its numbers in words."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        expect(page.locator("#depth-chart canvas")).to_have_count(1)
        expect(page.locator("#depth-words")).to_contain_text("waiting")
        page.click('#chart-ranges a[data-range="7d"]')
        page.wait_for_url(re.compile(r"range=7d"))
        page.reload()
        expect(page.locator("#charts-heading")).to_have_text(
            "Throughput and queue depth, last 7 days"
        )
        expect(page.locator('#chart-ranges a[aria-current="page"]')).to_have_text("last 7 days")
        expect(page.locator("#throughput-chart canvas")).to_have_count(1)
        expect(page.locator("#depth-chart canvas")).to_have_count(1)
        hours = page.evaluate("JSON.parse(document.querySelector('#throughput-chart')"
                              ".dataset.chart).x.length")  # fmt: skip
        assert hours == 168
        page.click('#chart-ranges a[data-range="1h"]')
        page.wait_for_url(re.compile(r"range=1h"))
        expect(page.locator("#throughput-totals")).to_contain_text("per minute")
        browser.close()


def test_an_admin_edits_a_runtime_schedule_seeing_the_next_fires_first(
    served: tuple[str, str],
) -> None:
    """On a job's page an admin adds a schedule, presses its Edit: the editor opens in view
    filled in; switching to an interval with an end date updates the preview as they type;
    Save changes the schedule in the list (a declared schedule offers no Edit)."""
    base, token = served
    expect = playwright_api.expect
    job = "syncAccelerate"
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        page.goto(f"{base}/admin/jobs/{job}")
        expect(page.locator("#job-schedules .schedule-edit")).to_have_count(0)
        page.fill('#schedule-form input[name="id"]', "ui-edit")
        page.fill('#schedule-form input[name="cron"]', "0 7 * * *")
        expect(page.locator("#preview-fires li")).to_have_count(5)
        _settled(page)
        page.click('#schedule-form button[type="submit"]')
        expect(page.locator("#schedule-saved")).to_contain_text("Saved ui-edit")
        edit = page.locator('#job-schedules .schedule-edit[data-schedule="ui-edit"]')
        expect(edit).to_have_count(1)
        _settled(page)
        edit.click()
        form = page.locator("#schedule-edit-form")
        expect(form.locator('input[name="cron"]')).to_have_value("0 7 * * *")
        expect(page.locator("#edit-preview-fires li")).to_have_count(5)
        assert page.evaluate(
            "() => { const r = document.querySelector('#schedule-editor').getBoundingClientRect();"
            " return r.top >= 0 && r.top < window.innerHeight; }"
        ), "the editor opens in view"
        form.locator('select[name="kind"]').select_option("every")
        form.locator('input[name="every"]').press_sequentially("7200")
        expect(page.locator("#schedule-edit-preview")).to_contain_text("Every 2 hours")
        now = datetime.now(UTC)
        ends = (now + timedelta(hours=5)).replace(second=0, microsecond=0)
        # Intervals count from the epoch: the fires are the even UTC hours up to the end.
        first = (int(now.timestamp()) // 7200 + 1) * 7200
        fires = len(range(first, int(ends.timestamp()) + 1, 7200))
        form.locator('input[name="timezone"]').fill("UTC")
        form.locator('input[name="end"]').fill(ends.strftime("%Y-%m-%dT%H:%M"))
        expect(page.locator("#edit-preview-fires li")).to_have_count(fires)
        _settled(page)
        form.locator('button[type="submit"]').click()
        expect(page.locator("#schedule-edit-saved")).to_contain_text("Saved ui-edit: Every 2")
        expect(page.locator("#job-schedules h3", has_text="Every 2 hours")).to_have_count(1)
        browser.close()


def test_cancel_the_runs_ticked_on_the_runs_page(served: tuple[str, str]) -> None:
    """Of three waiting runs an admin ticks two; the ticks survive the list refreshing
    itself; "Cancel ticked" asks to cancel 2 runs, and only those two are cancelled."""
    base, token = served
    expect = playwright_api.expect
    job = "policyReviews"
    asked: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)

        def accept(dialog: object) -> None:
            asked.append(dialog.message)  # type: ignore[attr-defined]
            dialog.accept()  # type: ignore[attr-defined]

        page.on("dialog", accept)
        row = page.locator(f'tr[data-job="{job}"]')
        _settled(page)
        row.locator(".pause").click()
        expect(row.locator(".paused-flag")).to_have_text("yes")
        for _ in range(3):
            _settled(page)
            row.locator(".run-now").click()
        page.goto(f"{base}/admin/runs?job={job}&state=queued")
        rows = page.locator("#runs-table tbody tr[data-run]")
        expect(rows).to_have_count(3)
        ticked = [rows.nth(i).get_attribute("data-run") for i in (0, 2)]
        for run_id in ticked:
            page.check(f'[id="pick-{run_id}"]')
        _settled(page)
        with page.expect_response(re.compile(r"/fragments/run-list")):
            page.evaluate("htmx.trigger(document.body, 'refresh')")
        _settled(page)
        expect(page.locator("#runs input.pick:checked")).to_have_count(2)
        page.click("#picked-cancel")
        expect(page.locator("#bulk-result")).to_have_text("cancel: 2 done.")
        expect(rows).to_have_count(1)
        page.goto(f"{base}/admin/runs?job={job}&state=cancelled")
        cancelled = page.locator("#runs-table tbody tr[data-run]")
        expect(cancelled).to_have_count(2)
        assert sorted(cancelled.nth(i).get_attribute("data-run") or "" for i in (0, 1)) == sorted(
            r or "" for r in ticked
        )
        page.goto(f"{base}/admin/")
        _settled(page)
        page.locator(f'tr[data-job="{job}"] .resume').click()
        expect(page.locator(f'tr[data-job="{job}"] .paused-flag')).to_have_text("no")
        browser.close()
    assert asked == ["Cancel 2 ticked runs?"]
