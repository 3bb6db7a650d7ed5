"""The dashboard on a 390 px phone in real Chromium: no sideways scrolling on any page,
a one-line header, the detail opening in view, a name on every control, visible focus."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.test_dashboard import (
    SCREENSHOT,
    _settled,
    _signed_in,
    playwright_api,
    served,
)

__all__ = ["served"]  # the module's server fixture, shared with the main browser test

PHONE = 390
ARTIFACTS: Path = SCREENSHOT.parent
#: Every element sticking out of the viewport, and how far (CSS pixels).
TOO_WIDE = """() => [...document.querySelectorAll("body *")]
  .map(e => [e, e.getBoundingClientRect()])
  .filter(([e, r]) => r.width > 0 && (r.right > innerWidth + 0.5 || r.left < -0.5))
  .map(([e, r]) => `${e.tagName.toLowerCase()}#${e.id}.${e.className} right=${r.right}`)"""
#: The header's children whose top is not the first child's (what a wrapped header has).
WRAPPED = """() => { const kids = [...document.querySelector("header").children];
  const top = kids[0].getBoundingClientRect().top;
  return kids.filter(k => Math.abs(k.getBoundingClientRect().top - top) > 8)
    .map(k => k.className); }"""
#: Controls without an accessible name (a label, aria-label or text).
UNNAMED = """() => [...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button")]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
    && !e.textContent.trim())
  .map(e => e.outerHTML.slice(0, 80))"""


def _fits(page: playwright_api.Page, what: str) -> None:
    """No element wider than the phone, no sideways scroll, header on one line, every
    control named."""
    assert page.evaluate(TOO_WIDE) == [], what
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, what
    assert page.evaluate(WRAPPED) == [], what
    assert page.evaluate(UNNAMED) == [], what


def test_every_page_fits_a_phone(served: tuple[str, str]) -> None:
    """At 390 px the overview (with a run's and a schedule's detail open), the runs page, a
    run's page, a job's page, the audit page and the sign-in page fit the screen; the detail
    opens in view; focus is visible."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token, width=PHONE)
        expect(page.locator("#jobs-table tbody tr")).to_have_count(11)
        _settled(page)
        _fits(page, "overview")
        page.screenshot(path=str(ARTIFACTS / "phone-overview.png"))
        page.locator('tr[data-job="weeklyDigest"] .run-now').click()
        link = page.locator("#runs-table tbody tr", has_text="weeklyDigest").locator("a").first
        link.click()
        expect(page.locator("#run-detail")).to_be_visible()
        _settled(page)
        top = page.evaluate("document.querySelector('#detail').getBoundingClientRect().top")
        assert 0 <= top < page.viewport_size["height"] / 2  # type: ignore[index]
        _fits(page, "run detail")
        page.screenshot(path=str(ARTIFACTS / "phone-run.png"))
        page.locator('tr[data-job="weeklyDigest"] td[data-label="Schedule"] a').first.click()
        expect(page.locator("#slots-table")).to_be_visible()
        _settled(page)
        _fits(page, "schedule detail")
        page.goto(f"{base}/admin/runs")
        expect(page.locator("#runs-table")).to_be_visible()
        _fits(page, "runs")
        page.locator("#runs-table tbody tr[data-run] a").first.click()
        expect(page.locator("#run-detail")).to_be_visible()
        _fits(page, "run page")
        page.goto(f"{base}/admin/jobs/weeklyDigest")
        expect(page.locator("table.next-fires")).to_be_visible()
        expect(page.locator("#job-duration-chart canvas")).to_have_count(1)
        expect(page.locator("#job-duration-chart .u-legend")).to_contain_text("p95")
        _fits(page, "job page")
        page.screenshot(path=str(ARTIFACTS / "phone-job.png"), full_page=True)
        page.goto(f"{base}/admin/audit")
        expect(page.locator("#audit-table")).to_be_visible()
        _fits(page, "audit")
        page.keyboard.press("Tab")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none"), outline
        page.screenshot(path=str(ARTIFACTS / "phone-audit.png"), full_page=True)
        page.context.clear_cookies()
        page.goto(f"{base}/admin/")
        page.wait_for_url(re.compile(r"/login$"))
        _fits(page, "sign-in")
        browser.close()
