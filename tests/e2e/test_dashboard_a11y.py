"""An automated accessibility check of every dashboard page in real Chromium, with a
vendored axe-core 4.14.1 (MPL-2.0, license alongside in ``vendor/``): no serious or
critical violation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.e2e.test_dashboard import _settled, _signed_in, playwright_api, served

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["served"]  # the module's server fixture, shared with the main browser test

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"


def _violations(page: Page) -> list[str]:
    """The serious and critical axe violations of the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in {"serious", "critical"}
    ]


def test_no_page_has_a_serious_accessibility_violation(served: tuple[str, str]) -> None:
    """axe-core finds no serious or critical violation on the overview (24 h and 7 days),
    the runs page, a run's page, a job's page with its schedule editor open, the audit page
    or the sign-in page."""
    base, token = served
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as pw:
        browser, page = _signed_in(pw, base, token)
        expect(page.locator("#jobs-table tbody tr")).to_have_count(11)
        _settled(page)
        page.locator('tr[data-job="syncAccelerate"] .run-now').click()
        expect(page.locator("#runs-table tbody tr", has_text="syncAccelerate")).to_have_count(1)
        found = {"overview": _violations(page)}
        page.goto(f"{base}/admin/runs")
        found["runs"] = _violations(page)
        page.locator("#runs-table tbody tr[data-run] a").first.click()
        expect(page.locator("#run-detail")).to_be_visible()
        found["run"] = _violations(page)
        page.goto(f"{base}/admin/jobs/syncXero")
        found["job"] = _violations(page)
        page.fill('#schedule-form input[name="id"]', "a11y-check")
        page.fill('#schedule-form input[name="cron"]', "0 6 * * *")
        _settled(page)
        page.click('#schedule-form button[type="submit"]')
        expect(page.locator("#schedule-saved")).to_contain_text("Saved a11y-check")
        _settled(page)
        page.click('.schedule-edit[data-schedule="a11y-check"]')
        expect(page.locator("#edit-preview-fires li")).to_have_count(5)
        found["schedule editor"] = _violations(page)
        page.goto(f"{base}/admin/?range=7d")
        expect(page.locator("#throughput-chart canvas")).to_have_count(1)
        found["overview, 7 days"] = _violations(page)
        page.goto(f"{base}/admin/audit")
        found["audit"] = _violations(page)
        page.context.clear_cookies()
        page.goto(f"{base}/admin/login")
        found["sign-in"] = _violations(page)
        browser.close()
    assert {name: v for name, v in found.items() if v} == {}
